"""Receipts as documents, in the bills' style: one template rendered as a page or as a PDF
(WeasyPrint with the Noto CJK font), in Chinese or English. A payment's receipt and a deposit's
receipt (押金收据, ``Y…``) share it: the frame of a copy (title, number, marks, who took the
money) is one, and each fills in its own details. A receipt prints in three copies, one a
page: the customer's (客户联), the stub kept at the counter (存根联) and the bookkeeping copy for
finance (记账联).

The marks: the copies of a recorded print (``collection.services.receipts``) are the original
(unmarked) or a reprint (重打, with its number); any other rendering is marked view-only
(仅供查看, not valid as a receipt) on every copy. A receipt whose payment was reversed is
marked void (作废) with the reason, and keeps its number."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar, cast

from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.models import Bill
from collection.models import (
    Channel,
    Deposit,
    DepositPrint,
    DocumentPrint,
    Payment,
    PaymentAllocation,
    PaymentReversal,
    Receipt,
    ReceiptPrint,
)
from customers.models import Account, Customer, PaymentMode, Premise
from tenancy.models import Tenant

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = (("仟", 1000), ("佰", 100), ("拾", 10), ("", 1))
_SECTIONS = ("", "万", "亿", "万亿")


def _four_digits(number: int) -> str:
    """1 … 9999 in capitals, a zero inside written once (1005: 壹仟零伍)."""
    words, zero = "", False
    for place, size in _PLACES:
        digit = number // size % 10
        if digit == 0:
            zero = bool(words)
            continue
        if zero:
            words += "零"
            zero = False
        words += _DIGITS[digit] + place
    return words


def _yuan_in_words(yuan: int) -> str:
    groups = []
    while yuan:
        yuan, group = divmod(yuan, 10000)
        groups.append(group)
    words, gap = "", False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            gap = bool(words)
            continue
        if words and (gap or group < 1000):
            words += "零"
        words += _four_digits(group) + _SECTIONS[index]
        gap = False
    return words


def amount_in_words(amount: Decimal) -> str:
    """An amount in the capitals of Chinese financial writing (人民币大写), as the accounting
    rules write them: 壹佰元整, 伍角整, 壹佰元零伍分, 壹仟陆佰捌拾元叁角贰分; "整" after yuan
    or jiao, none after fen."""
    fen_total = int((amount * 100).to_integral_value())
    if fen_total < 0:
        raise ValueError("an amount in words is never negative")
    yuan, rest = divmod(fen_total, 100)
    jiao, fen = divmod(rest, 10)
    words = _yuan_in_words(yuan) + ("元" if yuan else "")
    if not jiao and not fen:
        return (words or "零元") + "整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif yuan:
        words += "零"
    return words + (_DIGITS[fen] + "分" if fen else "整")


def _copies() -> list[str]:
    return [_("Customer copy"), _("Stub"), _("Bookkeeping copy")]


_Context = TypeVar("_Context", bound=Callable[..., dict[str, Any]])


def _in_its_language(build: _Context) -> _Context:
    """A context builder taking ``(document, language, …)`` runs in that language, so its
    labels (the copies' names, the title) are the document's, not the request's."""

    @functools.wraps(build)
    def built(document: Any, language: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with translation.override(language):
            return build(document, language, *args, **kwargs)

    return cast(_Context, built)


def _frame(
    tenant: Tenant, language: str, printed: DocumentPrint | None, **details: Any
) -> dict[str, Any]:
    """What every receipt's copy shows around its details: the tenant, the copies and the
    marks of the print (original, reprint no. N, or view-only when no print is named)."""
    return {
        "language": language,
        "tenant": tenant,
        "copies": _copies(),
        "printed": printed,
        "reprint": printed if printed is not None and not printed.is_original else None,
        "view_only": printed is None,
        "printed_at": timezone.localtime(printed.printed_at, tenant.zone) if printed else None,
        **details,
    }


@_in_its_language
def receipt_context(
    receipt: Receipt, language: str, printed: ReceiptPrint | None = None
) -> dict[str, Any]:
    tenant = Tenant.objects.get(pk=receipt.tenant_id)
    payment = Payment.objects.get(pk=receipt.payment_id)
    account = Account.objects.get(pk=payment.account_id)
    customer = Customer.objects.get(pk=account.customer_id)
    premise = Premise.objects.get(pk=account.premise_id)
    reversal = PaymentReversal.objects.filter(payment=payment).first()
    parts = list(
        PaymentAllocation.objects.filter(payment=payment, reversal__isnull=True).order_by("pk")
    )
    bills = Bill.objects.in_bulk([part.bill_id for part in parts if part.bill_id])
    rows = [
        {
            "item": bills[part.bill_id].number if part.bill_id else _("Arrears at go-live"),
            "period": bills[part.bill_id].period if part.bill_id else "",
            "late_fee": part.late_fee,
            "principal": part.principal,
            "total": part.late_fee + part.principal,
        }
        for part in parts
    ]
    surplus_label = (
        _("To the prepaid balance")
        if account.payment_mode == PaymentMode.PREPAID
        else _("To credit on account")
    )
    return _frame(
        tenant,
        language,
        printed,
        title=_("Receipt"),
        number=receipt.display_number,
        body_template="collection/_payment_receipt_body.html",
        cashier=payment.actor_label,
        receipt=receipt,
        payment=payment,
        account=account,
        customer=customer,
        premise=str(premise),
        channel=Channel(payment.channel).label,
        issued_at=timezone.localtime(receipt.issued_at, tenant.zone),
        rows=rows,
        surplus_label=surplus_label,
        in_words=amount_in_words(payment.amount),
        reversal=reversal,
    )


@_in_its_language
def deposit_receipt_context(
    deposit: Deposit, language: str, printed: DepositPrint | None = None
) -> dict[str, Any]:
    """A deposit's receipt: the money held as the account's deposit, its number Y…. A deposit
    has no state of its own to print (a refund pays back the account's deposit as a whole, not
    one deposit), so nothing marks it returned."""
    tenant = Tenant.objects.get(pk=deposit.tenant_id)
    account = Account.objects.get(pk=deposit.account_id)
    return _frame(
        tenant,
        language,
        printed,
        title=_("Deposit receipt"),
        number=deposit.display_receipt_number,
        body_template="collection/_deposit_receipt_body.html",
        cashier=deposit.actor_label,
        deposit=deposit,
        account=account,
        customer=Customer.objects.get(pk=account.customer_id),
        premise=str(Premise.objects.get(pk=account.premise_id)),
        channel=Channel(deposit.channel).label,
        issued_at=timezone.localtime(deposit.taken_at, tenant.zone),
        in_words=amount_in_words(deposit.amount),
        reversal=None,
    )


def render_document(context: dict[str, Any], *, as_pdf: bool = True) -> tuple[bytes | str, str]:
    """A receipt's three copies (the context of ``receipt_context`` or
    ``deposit_receipt_context``) as HTML (a page) or as PDF bytes, and the content type."""
    with translation.override(context["language"]):
        html = render_to_string("collection/receipt_document.html", context)
    if not as_pdf:
        return html, "text/html; charset=utf-8"
    from weasyprint import HTML  # imported here: loading Pango is only needed for PDFs

    return HTML(string=html).write_pdf(), "application/pdf"


def render_receipt(
    receipt: Receipt,
    *,
    language: str = "zh-hans",
    as_pdf: bool = True,
    printed: ReceiptPrint | None = None,
) -> tuple[bytes | str, str]:
    """The receipt's three copies as HTML or PDF: ``printed``'s, or marked view-only."""
    return render_document(receipt_context(receipt, language, printed), as_pdf=as_pdf)


def render_deposit_receipt(
    deposit: Deposit,
    *,
    language: str = "zh-hans",
    as_pdf: bool = True,
    printed: DepositPrint | None = None,
) -> tuple[bytes | str, str]:
    """The deposit receipt's three copies as HTML or PDF: ``printed``'s, or marked view-only."""
    return render_document(deposit_receipt_context(deposit, language, printed), as_pdf=as_pdf)
