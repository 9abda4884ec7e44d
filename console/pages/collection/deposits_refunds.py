"""Console pages of deposits, refunds and closing an account (销户), in the collect section.

- **Deposits**: find an account by number, see the deposit its policy requires, what it holds
  and what is missing, its deposits with their receipt numbers, and take one at the counter,
  which lands on the deposit's receipt to print its original (``console.pages.collection
  .receipts``).
- **Refunds**: the list (by state), a request form, and each refund's page where a second
  person approves or rejects it and the counter (or finance) pays it.
- **Account closing**: the final reading, a preview of the final bill with the credit and the
  deposit applied and the refund or arrears left, then the confirmation; each closing's page
  shows its steps.

Views parse, call one service (``collection.services.*``) and render; the services hold the
rules (four eyes, what may be refunded, the closing's steps) and their errors land on the form.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ValidationError as DrfValidationError

from collection.api import AmountField
from collection.api_refunds import FinalRegistersSerializer
from collection.deposit_models import DEPOSIT_CHANNELS
from collection.models import (
    AccountClosing,
    Channel,
    ClosingState,
    Deposit,
    Refund,
    RefundChannel,
    RefundState,
)
from collection.services.closing import (
    Payout,
    cancel_closing,
    close_account,
    finish_closing,
    preview_closing,
)
from collection.services.deposits import deposit_status, take_deposit
from collection.services.errors import PaymentConflict, field_error
from collection.services.refunds import (
    account_refundable,
    approve_refund,
    check_may_decide,
    may_reveal_payee_bank_account,
    pay_refund,
    reject_refund,
    request_refund,
    reveal_payee_bank_account,
)
from collection.services.shifts import open_shift_of
from console.access import can, page, scoped
from console.forms import NON_FIELD, Field, Form, error_map
from console.pages.billing.common import actor
from customers.identifiers import account_number_problem
from customers.models import Account
from ledger.models import JournalLine
from tenancy.money import ZERO


def _account(request: HttpRequest, number: str) -> Account | None:
    """The account of that number among the page's sites (another's answers like none)."""
    number = number.strip()
    if not number:
        return None
    return scoped(request, Account.objects.select_related("customer")).filter(number=number).first()


def _lookup_error(number: str) -> str:
    """Why no account was found: a mistyped check digit says so, as the counter does."""
    problem = account_number_problem(re.sub(r"[\s\-]", "", number))
    if problem == "check_digit":
        return _(
            "The check digit of %(number)s does not match: the account number was probably "
            "mistyped. Check it against the bill."
        ) % {"number": number.strip()}
    if problem == "format":
        return _("An account number is 6 to 20 digits.")
    return _("No such account.")


def _money(form: Form, name: str, *, required: bool = False) -> Decimal:
    """Yuan as the API's ``AmountField`` reads them (the same words for "1e3", "-1" or too
    much); a field left empty is 0.00, or refused as missing when the form needs it."""
    raw = str(form.value(name) or "").strip()
    if not raw:
        if required:
            raise field_error(name, _("Enter the amount."), "required")
        return ZERO
    try:
        return AmountField(min_value=ZERO).run_validation(raw)
    except DrfValidationError as exc:
        raise field_error(name, " ".join(error_map(exc)[NON_FIELD]), "invalid") from exc


def _conflict_to_form(form: Form, exc: PaymentConflict) -> None:
    form.add_errors({"__all__": list(exc.messages)})


# --- deposits --------------------------------------------------------------------------------

DEPOSIT_FIELDS = [
    Field("channel", gettext_lazy("Channel"), kind="select", required=True,
          choices=[(c.value, c.label) for c in DEPOSIT_CHANNELS]),
    Field("amount", gettext_lazy("Amount (yuan)"), kind="number", step="0.01", required=True),
    Field("external_reference", gettext_lazy("Card slip reference"),
          help=gettext_lazy("For a card deposit: the reference on the terminal's slip.")),
    Field("idempotency_key", "", kind="hidden"),
]  # fmt: skip


@page("deposits")
def deposits(request: HttpRequest) -> HttpResponse:
    """One account's deposit (required, held, missing, its deposits) and taking one."""
    number = str(request.GET.get("account") or request.POST.get("account") or "")
    account = _account(request, number)
    may_take = can(request, "deposits", "add")
    form = Form(
        DEPOSIT_FIELDS,
        request.POST if request.method == "POST" else None,
        initial={"channel": Channel.COUNTER_CASH, "idempotency_key": uuid.uuid4().hex},
    )
    if request.method == "POST":
        if not may_take or account is None:
            raise PermissionDenied
        with form.attempt():
            try:
                result = take_deposit(
                    actor(request), account=account, channel=str(form.value("channel")),
                    amount=_money(form, "amount", required=True),
                    external_reference=str(form.value("external_reference")),
                    idempotency_key=str(form.value("idempotency_key")),
                )  # fmt: skip
            except PaymentConflict as exc:
                _conflict_to_form(form, exc)
        if form.ok:
            messages.success(
                request,
                _("Deposit taken: receipt %(number)s.")
                % {"number": result.deposit.display_receipt_number},
            )
            return redirect("console:deposit-receipt", deposit_id=result.deposit.pk)
    shift = open_shift_of(actor(request)) if may_take else None
    shift_here = shift is not None and account is not None and shift.site_id == account.site_id
    context: dict[str, Any] = {
        "number": number, "account": account, "form": form, "may_take": may_take,
        "lookup_error": _lookup_error(number) if number and account is None else "",
        "shift": shift,
        "shift_here": shift_here,
    }  # fmt: skip
    if account is not None:
        context["status"] = deposit_status(account)
        context["refundable"] = account_refundable(account)
        context["account_deposits"] = Deposit.objects.filter(account=account).order_by("-id")
    else:
        context["recent"] = scoped(request, Deposit.objects.select_related("account")).order_by(
            "-id"
        )[:50]
    return render(
        request, "console/collection/deposits.html", context, status=200 if form.ok else 400
    )


# --- refunds ---------------------------------------------------------------------------------

REFUND_FIELDS = [
    Field("account", gettext_lazy("Account number"), required=True),
    Field("from_wallet", gettext_lazy("Credit on account to refund (yuan)"), kind="number",
          step="0.01"),
    Field("from_deposit", gettext_lazy("Deposit to refund (yuan)"), kind="number", step="0.01"),
    Field("channel", gettext_lazy("Paid by"), kind="select", required=True,
          choices=RefundChannel.choices),
    Field("payee_bank_account", gettext_lazy("Customer's bank account")),
    Field("payee_bank", gettext_lazy("Customer's bank")),
    Field("provider", gettext_lazy("Online provider"),
          help=gettext_lazy("For a refund back to the provider: wechat, alipay…")),
    Field("reason", gettext_lazy("Reason"), required=True),
]  # fmt: skip


@page("refunds")
def refunds(request: HttpRequest) -> HttpResponse:
    """Refunds by state, newest first, and the request form."""
    may_request = can(request, "refunds", "add")
    form = Form(REFUND_FIELDS, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not may_request:
            raise PermissionDenied
        with form.attempt():
            account = _account(request, str(form.value("account")))
            if account is None:
                raise field_error("account", _("No such account."), "unknown")
            refund = request_refund(
                actor(request), account=account, from_wallet=_money(form, "from_wallet"),
                from_deposit=_money(form, "from_deposit"), channel=str(form.value("channel")),
                payee_bank_account=str(form.value("payee_bank_account")),
                payee_bank=str(form.value("payee_bank")), provider=str(form.value("provider")),
                reason=str(form.value("reason")),
            )  # fmt: skip
        if form.ok:
            messages.success(request, _("Refund requested; a second person approves it."))
            return redirect("console:refund", refund_id=refund.pk)
    state = request.GET.get("state", "")
    listed = scoped(request, Refund.objects.select_related("account")).order_by("-id")
    if state in RefundState.values:
        listed = listed.filter(state=state)
    return render(
        request,
        "console/collection/refunds.html",
        {"refunds": listed[:100], "form": form, "may_request": may_request, "state": state,
         "states": RefundState.choices},
        status=200 if form.ok else 400,
    )  # fmt: skip


def _refund_form(request: HttpRequest) -> Form:
    return Form(
        [Field("reason", gettext_lazy("Why rejected")),
         Field("payment_reference", gettext_lazy("Bank or provider reference"))],
        request.POST if request.method == "POST" else None,
    )  # fmt: skip


def _refund_page(
    request: HttpRequest, found: Refund, form: Form, *, revealed: str = "", status: int = 200
) -> HttpResponse:
    """The refund's page: its facts and steps, the forms the person may use, and the customer's
    bank account masked (in full only as ``revealed``, on the answer to a reveal)."""
    principal = actor(request)
    may_decide = found.state == RefundState.REQUESTED and can(request, "refunds", "approve")
    decide_refused = ""
    if may_decide:
        try:
            check_may_decide(principal, found)
        except ValidationError as exc:  # four eyes: the requester sees why not
            may_decide, decide_refused = False, " ".join(exc.messages)
        except PermissionDenied as exc:
            may_decide, decide_refused = False, str(exc)
    may_pay = found.state == RefundState.APPROVED and can(request, "refunds", "pay")
    pay_shift = open_shift_of(principal) if may_pay and found.channel == "cash" else None
    entries = [found.approval_entry_id, found.payment_entry_id]
    lines = JournalLine.objects.filter(entry_id__in=[e for e in entries if e]).select_related(
        "ledger_account"
    )
    response = render(
        request,
        "console/collection/refund.html",
        {"refund": found, "form": form, "may_decide": may_decide,
         "decide_refused": decide_refused,
         "may_pay": may_pay,
         # cash comes out of the payer's open shift at the refund's site (as the service asks)
         "pay_shift": pay_shift,
         "pay_shift_here": pay_shift is not None and pay_shift.site_id == found.site_id,
         "may_reveal": not revealed and may_reveal_payee_bank_account(principal, found),
         "payee_bank_account": revealed,
         "lines": lines.order_by("entry_id", "pk")},
        status=status,
    )  # fmt: skip
    if revealed:
        response["Cache-Control"] = "no-store"
    return response


@page("refunds")
def refund(request: HttpRequest, refund_id: int) -> HttpResponse:
    """One refund with its steps; POST ``do`` = approve, reject (with a reason) or pay."""
    found = get_object_or_404(
        scoped(request, Refund.objects.select_related("account", "site")), pk=refund_id
    )
    principal = actor(request)
    form = _refund_form(request)
    if request.method == "POST":
        step = request.POST.get("do", "")
        permission = {"approve": "approve", "reject": "approve", "pay": "pay"}.get(step)
        if permission is None or not can(request, "refunds", permission):
            raise PermissionDenied
        with form.attempt():
            try:
                if step == "approve":
                    approve_refund(principal, found)
                elif step == "reject":
                    reject_refund(principal, found, str(form.value("reason")))
                else:
                    pay_refund(
                        principal, found, payment_reference=str(form.value("payment_reference"))
                    )
            except PaymentConflict as exc:
                _conflict_to_form(form, exc)
        if form.ok:
            messages.success(request, _("Refund %(state)s.") % {
                "state": RefundState(Refund.objects.get(pk=found.pk).state).label
            })  # fmt: skip
            return redirect("console:refund", refund_id=found.pk)
        found.refresh_from_db()
    return _refund_page(request, found, form, status=200 if form.ok else 400)


@page("refunds", "reveal")
def refund_reveal(request: HttpRequest, refund_id: int) -> HttpResponse:
    """The refund's page with the customer's bank account in full, for whoever pays the
    transfer (POST only: every reveal is in the audit trail). The number is in this answer
    alone, never in the session or a URL; a refund that is not an approved transfer answers
    its page with the reason."""
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    found = get_object_or_404(
        scoped(request, Refund.objects.select_related("account", "site")), pk=refund_id
    )
    form = _refund_form(request)
    revealed, refused = "", 400
    with form.attempt():
        try:
            revealed = reveal_payee_bank_account(actor(request), found)
        except PaymentConflict as exc:  # paid or rejected since
            _conflict_to_form(form, exc)
            refused = 409
    if not form.ok:
        return _refund_page(request, found, form, status=refused)
    return _refund_page(request, found, form, revealed=revealed)


# --- closing an account ----------------------------------------------------------------------

CLOSING_FIELDS = [
    Field("account", gettext_lazy("Account number"), required=True, autofocus=True),
    Field("taken_at", gettext_lazy("Final reading taken at"), kind="datetime-local",
          required=True),
    Field("total", gettext_lazy("Final reading, total (kWh or m³)"), kind="number", step="0.001",
          required=True, help=gettext_lazy("As the meter shows it, up to 3 decimals: 40615.100.")),
    Field("reason", gettext_lazy("Reason for closing"), required=True),
    Field("refund_channel", gettext_lazy("Refund of what is left, paid by"), kind="select",
          required=True, choices=RefundChannel.choices),
    Field("payee_bank_account", gettext_lazy("Customer's bank account")),
    Field("payee_bank", gettext_lazy("Customer's bank")),
    Field("provider", gettext_lazy("Online provider")),
]  # fmt: skip


def _reading(request: HttpRequest, form: Form) -> tuple[Account, Any, dict[str, Decimal]]:
    account = _account(request, str(form.value("account")))
    if account is None:
        raise field_error("account", _("No such account."), "unknown")
    taken_at = parse_datetime(str(form.value("taken_at")))
    if taken_at is None:
        raise field_error("taken_at", _("Enter the date and time of the final reading."))
    if timezone.is_naive(taken_at):
        assert account.tenant is not None
        taken_at = timezone.make_aware(taken_at, account.tenant.zone)
    # The registers' format, as the API checks it: required, a plain number ≥ 0, 3 decimals.
    typed = str(form.value("total")).strip()
    if not typed:
        raise field_error("total", _("Enter the final reading shown on the meter."), "required")
    registers = FinalRegistersSerializer(data={"total": typed})
    registers.is_valid(raise_exception=True)
    return account, taken_at, registers.reading_values()


@dataclass(frozen=True)
class SettlementRow:
    label: str
    amount: Decimal
    note: str = ""
    total: bool = False


def settlement_rows(figures: Mapping[str, Any]) -> list[SettlementRow]:
    """The settlement's figures in the order it applies them, so the page adds up: what is owed
    (the bills, with the final charge, and a prepaid balance below zero), what the credit and
    the deposit pay of it, the arrears left and the refund. Empty while there are no figures
    (the final reading awaits verification)."""
    if not figures:
        return []
    amount = {key: Decimal(str(value)) for key, value in figures.items()}
    owed = amount["bills_owed"] + amount["wallet_owed"]
    return [
        SettlementRow(_("Final charge"), amount["final_charge"],
                      _("The final bill or the last prepaid charge, counted in what is owed "
                        "below.")),
        SettlementRow(_("Bills owed"), amount["bills_owed"]),
        SettlementRow(_("Prepaid balance owed"), amount["wallet_owed"],
                      _("The prepaid balance below zero.")),
        SettlementRow(_("Owed in all"), owed, total=True),
        SettlementRow(_("Credit on account"), amount["credit"]),
        SettlementRow(_("Credit applied"), -amount["credit_applied"]),
        SettlementRow(_("Deposit held"), amount["deposit"]),
        SettlementRow(_("Deposit applied"), -amount["deposit_applied"]),
        SettlementRow(_("Arrears left"), amount["arrears"],
                      _("Owed in all, less the credit and the deposit applied."), total=True),
        SettlementRow(_("To refund"), amount["refund"],
                      _("The credit and the deposit left after what they paid."), total=True),
    ]  # fmt: skip


def _previewed(form: Form) -> str:
    """What a preview was of: closing confirms only the figures the person saw."""
    typed = "|".join(str(form.value(spec.name)).strip() for spec in CLOSING_FIELDS)
    return hashlib.sha256(typed.encode()).hexdigest()


@page("account_closings", "close")
def account_closing_new(request: HttpRequest) -> HttpResponse:
    """The final reading; ``do=preview`` shows the final figures, ``do=close`` closes, and only
    after a preview of the same values (else it previews again: nothing irreversible happens
    on a first click or after a value changed)."""
    form = Form(
        CLOSING_FIELDS,
        request.POST if request.method == "POST" else None,
        initial={"refund_channel": RefundChannel.CASH},
    )
    preview = None
    if request.method == "POST":
        step = request.POST.get("do", "preview")
        if step == "close" and request.POST.get("previewed") != _previewed(form):
            step = "preview"
            messages.warning(
                request, _("Check the final figures first: the closing is confirmed after them.")
            )
        with form.attempt():
            account, taken_at, values = _reading(request, form)
            try:
                if step == "close":
                    closing = close_account(
                        actor(request), account, reason=str(form.value("reason")),
                        taken_at=taken_at, values=values,
                        payout=Payout(str(form.value("refund_channel")),
                                      str(form.value("payee_bank_account")),
                                      str(form.value("payee_bank")),
                                      str(form.value("provider"))),
                    )  # fmt: skip
                else:
                    preview = preview_closing(
                        actor(request), account, taken_at=taken_at, values=values
                    )
            except PaymentConflict as exc:
                _conflict_to_form(form, exc)
        if form.ok and step == "close":
            if closing.state == ClosingState.CLOSED:
                messages.success(request, _("Account closed."))
            else:
                messages.warning(request, _("The closing waits: %(why)s") % {
                    "why": closing.hold_reason
                })  # fmt: skip
            return redirect("console:account-closing", closing_id=closing.pk)
    return render(
        request,
        "console/collection/closing_new.html",
        {
            "form": form,
            "preview": preview,
            "previewed": _previewed(form) if preview else "",
            "rows": settlement_rows(preview.figures) if preview else [],
        },
        status=200 if form.ok else 400,
    )


@page("account_closings")
def account_closings(request: HttpRequest) -> HttpResponse:
    """The closings, newest first (those waiting for a verified final reading first when
    asked), each linking to its steps."""
    state = request.GET.get("state", "")
    listed = scoped(request, AccountClosing.objects.select_related("account")).order_by("-id")
    if state in ClosingState.values:
        listed = listed.filter(state=state)
    return render(
        request,
        "console/collection/closings.html",
        {
            "closings": listed[:100],
            "state": state,
            "states": ClosingState.choices,
            "may_close": can(request, "account_closings", "close"),
        },
    )


@page("account_closings")
def account_closing(request: HttpRequest, closing_id: int) -> HttpResponse:
    """A closing's steps and figures; POST resumes one that waits (its reading verified)."""
    closing = get_object_or_404(
        scoped(request, AccountClosing.objects.select_related("account", "bill", "refund")),
        pk=closing_id,
    )
    form = Form([], request.POST if request.method == "POST" else None)
    may_resume = closing.state == ClosingState.STARTED and can(request, "account_closings", "close")
    if request.method == "POST":
        if not may_resume:
            raise PermissionDenied
        with form.attempt():
            try:
                finish_closing(actor(request), closing)
            except PaymentConflict as exc:
                _conflict_to_form(form, exc)
        if form.ok:
            messages.success(request, _("Account closed."))
            return redirect("console:account-closing", closing_id=closing.pk)
    return _closing_page(request, closing, form, _cancel_form(None))


def _cancel_form(data: Any) -> Form:
    return Form([Field("reason", gettext_lazy("Why the closing is cancelled"), required=True)],
                data)  # fmt: skip


def _closing_page(
    request: HttpRequest, closing: AccountClosing, form: Form, cancel_form: Form
) -> HttpResponse:
    waits = closing.state == ClosingState.STARTED
    figures = {key: Decimal(value) for key, value in closing.figures.items()}
    return render(
        request,
        "console/collection/closing.html",
        {"closing": closing, "figures": figures, "rows": settlement_rows(figures), "form": form,
         "may_resume": waits and can(request, "account_closings", "close"),
         "may_cancel": waits and can(request, "account_closings", "cancel"),
         "cancel_form": cancel_form},
        status=200 if form.ok and cancel_form.ok else 400,
    )  # fmt: skip


@page("account_closings", "cancel")
def account_closing_cancel(request: HttpRequest, closing_id: int) -> HttpResponse:
    """Cancel a closing that waits, with the reason (POST only; audited). Nothing was posted;
    the final reading stays the meter's reading, and a suspect one stays with the verifiers."""
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    closing = get_object_or_404(
        scoped(request, AccountClosing.objects.select_related("account", "bill", "refund")),
        pk=closing_id,
    )
    form = _cancel_form(request.POST)
    refused = 400
    with form.attempt():
        try:
            cancel_closing(actor(request), closing, reason=str(form.value("reason")))
        except PaymentConflict as exc:  # settled or cancelled since
            _conflict_to_form(form, exc)
            refused = 409
    if form.ok:
        messages.success(request, _("Closing cancelled; the account stays open."))
        return redirect("console:account-closing", closing_id=closing.pk)
    closing.refresh_from_db()
    if refused == 409:  # the cancel form is gone from the page: the refusal goes on top
        shown = Form([], {})
        shown.add_errors(form.errors)
        response = _closing_page(request, closing, shown, _cancel_form(None))
    else:
        response = _closing_page(request, closing, Form([], None), form)
    response.status_code = refused
    return response


urlpatterns: list[URLPattern] = [
    path("deposits/", deposits, name="deposits"),
    path("refunds/", refunds, name="refunds"),
    path("refunds/<int:refund_id>/", refund, name="refund"),
    path("refunds/<int:refund_id>/reveal/", refund_reveal, name="refund-reveal"),
    path("account-closings/", account_closings, name="account-closings"),
    path("account-closings/new/", account_closing_new, name="account-closing-new"),
    path("account-closings/<int:closing_id>/", account_closing, name="account-closing"),
    path(
        "account-closings/<int:closing_id>/cancel/",
        account_closing_cancel,
        name="account-closing-cancel",
    ),
]
