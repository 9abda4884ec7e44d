"""Console pages of the collect stage (收费): the counter (find an account, see what is due, take
a payment), receipts of payments and deposits (print the original once, then reprints),
payments and their reversal (冲正), the reversals and the failed payment attempts finance
traces, the cashiers' shifts (日结) with holiday cash approvals and hand-overs to the bank,
deposits, refunds, closing an account, and recharge cards (batches, cards, redemption).

The pages parse, call one service of ``collection.services`` and render; the rules (who may
reverse, which channel a cashier takes, what a retried key answers) are the services'."""

from __future__ import annotations

from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from console.nav import Entry
from console.pages.collection import (
    counter,
    deposits_refunds,
    payments,
    receipts,
    shifts,
    vouchers,
)

NAV = [
    Entry("collect", _("Counter"), "console:counter", "payments", "due"),
    Entry("collect", _("My shift"), "console:my-shift", "shifts", "add"),
    Entry(
        "collect",
        _("Redeem a recharge card"),
        "console:voucher-redeem",
        "voucher_redemptions",
        "add",
    ),
    Entry("collect", _("Payments"), "console:payments", "payments"),
    Entry("collect", _("Reversals"), "console:payment-reversals", "payments"),
    Entry("collect", _("Shifts"), "console:shifts", "shifts"),
    Entry("collect", _("Holiday cash approvals"), "console:cash-approvals", "cash_approvals"),
    Entry("collect", _("Cash hand-overs"), "console:cash-handovers", "cash_handovers"),
    Entry("collect", _("Deposits"), "console:deposits", "deposits"),
    Entry("collect", _("Refunds"), "console:refunds", "refunds"),
    Entry("collect", _("Recharge cards"), "console:voucher-cards", "voucher_cards"),
    Entry("collect", _("Recharge card batches"), "console:voucher-batches", "voucher_batches"),
    Entry("collect", _("Account closings"), "console:account-closings", "account_closings"),
    Entry("collect", _("Failed payment attempts"), "console:payment-attempts", "payment_attempts"),
]

urlpatterns: list[URLPattern] = [
    path("counter/", counter.counter, name="counter"),
    path("counter/accounts/<int:account_id>/", counter.counter_account, name="counter-account"),
    path("payments/", payments.payments, name="payments"),
    path("payments/<int:payment_id>/", payments.payment, name="payment"),
    path("payments/<int:payment_id>/reverse/", payments.payment_reverse, name="payment-reverse"),
    path("payment-reversals/", payments.reversals, name="payment-reversals"),
    path("payment-attempts/", payments.attempts, name="payment-attempts"),
    path("receipts/<int:receipt_id>/", receipts.receipt, name="receipt"),
    path("receipts/<int:receipt_id>/document/", receipts.receipt_document, name="receipt-document"),
    path("receipts/<int:receipt_id>/print/", receipts.receipt_print, name="receipt-print"),
    path("receipts/<int:receipt_id>/reprint/", receipts.receipt_reprint, name="receipt-reprint"),
    path("deposits/<int:deposit_id>/receipt/", receipts.deposit_receipt, name="deposit-receipt"),
    path(
        "deposits/<int:deposit_id>/receipt/document/",
        receipts.deposit_receipt_document,
        name="deposit-receipt-document",
    ),
    path(
        "deposits/<int:deposit_id>/receipt/print/",
        receipts.deposit_receipt_print,
        name="deposit-receipt-print",
    ),
    path(
        "deposits/<int:deposit_id>/receipt/reprint/",
        receipts.deposit_receipt_reprint,
        name="deposit-receipt-reprint",
    ),
    *shifts.urlpatterns,
    *deposits_refunds.urlpatterns,
    *vouchers.urlpatterns,
]
