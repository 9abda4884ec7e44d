"""The counter (柜台收费): find an account, see what it owes, take a payment, land on the receipt.

One search box takes what a customer hands over: the account number from a bill (its check
digit catches a mistyped one), a name, a mobile number or a meter's serial. Only the accounts
of the sites the cashier works for are searched; several matches are listed to pick from.

The account's panel shows what ``collection.services.allocation.account_due`` says it owes
today (the figures the API's ``accounts/{number}/due/`` answers): open bills oldest first, each
with its principal and its late fee as of today, the go-live arrears, the credit a payment would
use and the wallet (a prepaid balance, or credit on account). The payment form carries an
idempotency key made when the form is drawn: a double click, a reload of the posted form or the
browser's back button and a second submit send the same key, and ``post_payment`` answers
them with the payment posted first, so the money is taken once. The allocation preview is the
service's own pure plan (``plan_allocation``) of the same figures; posting plans again under
the account's lock. Any refusal of the service shows on the form as its message.

Taking money is a money action: where the tenant requires a second factor, the cashier has
signed in with it before any console page opens (``tenancy.second_factor``'s middleware).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions

from collection.api import PaymentRequestSerializer
from collection.models import (
    COUNTER_CHANNELS,
    AttemptOutcome,
    CashApproval,
    Channel,
    Payment,
    Receipt,
)
from collection.services.allocation import AccountPosition, account_due, plan_allocation
from collection.services.attempts import AttemptRequest, Failure, record_failed_attempt
from collection.services.cash_rules import holiday_rule_applies
from collection.services.closing import closing_under_way
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.shifts import open_shift_of
from console.access import can, page, scoped
from console.forms import NON_FIELD, Field, Form, api_request, error_map
from console.pages.billing.common import actor
from console.pages.customers._common import may
from customers.api import search_by_pii
from customers.identifiers import (
    ACCOUNT_NUMBER_BASE_DIGITS,
    account_number_problem,
    normalise_mobile,
)
from customers.models import Account, AccountStatus, Contact, PaymentMode
from metering.models import Meter
from tenancy.money import ZERO
from tenancy.principal import Principal

SEARCH_SHOWN = 50
RECENT_PAYMENTS = 5


# --- finding the account ---------------------------------------------------------------------


@dataclass
class Search:
    query: str
    accounts: list[Account] = field(default_factory=list)
    more: bool = False
    notes: list[str] = field(default_factory=list)


def _mobile(text: str) -> str | None:
    try:
        return normalise_mobile(text)
    except ValidationError:
        return None


def find_accounts(request: HttpRequest, query: str) -> Search:
    """The accounts of the page's sites that ``query`` names: by account number (checked), by
    mobile number (for the roles that may search by it: throttled and audited, as the customer
    search does), by meter serial, or by part of the customer's name."""
    search = Search(query)
    query = unicodedata.normalize("NFKC", query).strip()  # full-width digits an input method types
    compact = re.sub(r"[\s\-]", "", query)
    mine = scoped(request, Account.objects.all())  # each way of finding, on the page's sites
    found: set[int] = set()
    mistyped = False
    if re.fullmatch(r"[0-9]{6,20}", compact):
        problem = account_number_problem(compact)
        if problem is None:
            found |= set(mine.filter(number=compact).values_list("pk", flat=True))
        mistyped = problem == "check_digit"
    mobile = _mobile(compact)
    if mobile is not None and can(request, "contacts", "search_pii"):
        try:
            contacts = search_by_pii(request, Contact.objects.all(), "contacts", "mobile", mobile)
        except exceptions.Throttled as exc:
            search.notes.append(str(exc.detail))
        else:
            customers = contacts.values("customer_id")
            found |= set(mine.filter(customer__in=customers).values_list("pk", flat=True))
    meters = Meter.objects.filter(serial_number=query, account__isnull=False)
    found |= set(mine.filter(pk__in=meters.values("account_id")).values_list("pk", flat=True))
    if not compact.isdigit():
        named = mine.filter(customer__name__icontains=query).order_by("number")
        found |= set(named.values_list("pk", flat=True)[: SEARCH_SHOWN + 1])
    accounts = list(
        Account.objects.select_related("customer", "premise", "site")
        .filter(pk__in=found)
        .order_by("number")[: SEARCH_SHOWN + 1]
    )
    search.accounts, search.more = accounts[:SEARCH_SHOWN], len(accounts) > SEARCH_SHOWN
    if not accounts and mistyped and mobile is None and _full_account_number(query, compact):
        search.notes.append(
            _(
                "The check digit of %(number)s does not match: the account number was probably "
                "mistyped. Check it against the bill."
            )
            % {"number": compact}
        )
    return search


def _full_account_number(query: str, compact: str) -> bool:
    """Whether digits with a wrong check digit are a mistyped account number rather than
    something else the box takes: a number of the length the tenant's numbers have, and no
    meter's serial (of any site: a serial outside the person's sites is not found, not
    "mistyped"). A partial number or one typed without its check digit is not found."""
    if len(compact) != ACCOUNT_NUMBER_BASE_DIGITS + 1:
        return False
    return not Meter.objects.filter(serial_number__in={query, compact}).exists()


@page("payments", "due")
def counter(request: HttpRequest) -> HttpResponseBase:
    """The search box, and what it found: one account opens its panel, several are listed."""
    query = request.GET.get("q", "").strip()[:100]
    search = find_accounts(request, query) if query else None
    if search is not None and len(search.accounts) == 1 and not search.notes:
        return redirect("console:counter-account", account_id=search.accounts[0].pk)
    return render(request, "console/collection/counter.html", {"query": query, "search": search})


# --- the account's panel and the payment -----------------------------------------------------


def new_key() -> str:
    """A payment form's idempotency key: unique per cashier (the service keeps keys per
    sender), made when the form is drawn and sent with every submit of it."""
    return f"counter-{secrets.token_hex(12)}"


def _payment_form(
    data: Any, initial: dict[str, Any], approvals: list[tuple[str, str]] | None = None
) -> Form:
    """The payment form; ``approvals`` (a day the bank is closed, a prepaid account): the
    holiday cash approvals a supervisor granted this cashier for the account today."""
    approval_field = (
        [
            Field(
                "cash_approval",
                gettext_lazy("Holiday cash approval"),
                kind="select",
                choices=approvals,
                help=gettext_lazy(
                    "The bank is closed today: a cash top-up needs a supervisor's approval "
                    "and is capped per payment. A card payment needs none."
                ),
            )
        ]
        if approvals is not None
        else []
    )
    return Form(
        [
            Field(
                "channel",
                gettext_lazy("How the customer pays"),
                kind="select",
                required=True,
                choices=[(c.value, c.label) for c in Channel if c in COUNTER_CHANNELS],
            ),
            Field(
                "amount",
                gettext_lazy("Amount received (yuan)"),
                kind="number",
                step="0.01",
                required=True,
                autofocus=True,
                help=gettext_lazy(
                    "Filled with the total due; change it for a part payment or a top-up."
                ),
            ),
            Field(
                "external_reference",
                gettext_lazy("Card slip reference"),
                help=gettext_lazy("For a bank card: the reference on the terminal's slip."),
            ),
            *approval_field,
            Field("idempotency_key", "", kind="hidden"),
        ],
        data,
        initial=initial,
    )


def _holiday_approvals(
    account: Account, principal: Principal, today: date
) -> list[tuple[str, str]] | None:
    """The approvals to choose from when the holiday cash rule applies to the account today
    (None when it does not): those granted to this cashier for it today and not yet used."""
    assert principal.tenant is not None
    if not holiday_rule_applies(principal.tenant, account, Channel.COUNTER_CASH, today):
        return None
    granted = CashApproval.objects.filter(
        account=account, cashier_id=principal.id, business_day=today, payment__isnull=True
    ).order_by("id")
    return [
        (str(approval.pk), _("No. %(id)s: up to %(amount)s yuan, by %(by)s")
         % {"id": approval.pk, "amount": f"{approval.amount:,}", "by": approval.actor_label})
        for approval in granted
    ]  # fmt: skip


def _show_refusal(form: Form, exc: ValidationError | exceptions.ValidationError) -> None:
    """A refusal on the form in the service's words: by field where the form has the field,
    above the form otherwise (the account, a shift, a rule of the tenant)."""
    shown = {spec.name for spec in form.fields if spec.kind != "hidden"}
    for name, texts in error_map(exc).items():
        form.add_errors({name if name in shown else NON_FIELD: texts})


def _request_body(account: Account, form: Form) -> dict[str, Any]:
    return {
        "account": account.number,
        "channel": form.value("channel"),
        "amount": form.value("amount"),
        "idempotency_key": form.value("idempotency_key"),
        "external_reference": form.value("external_reference"),
        "cash_approval": form.value("cash_approval") or None,
    }


def _validated(
    request: HttpRequest, account: Account, form: Form, *, record: bool
) -> dict[str, Any] | None:
    """The form as the API validates a payment request; a request that fails is recorded as
    a failed attempt when it was meant to be posted (as the API records it)."""
    data = _request_body(account, form)
    body = PaymentRequestSerializer(data=data, context={"request": api_request(request)})
    if body.is_valid():
        return dict(body.validated_data)
    if record:
        record_failed_attempt(
            actor(request),
            AttemptRequest.from_data(data),
            AttemptOutcome.INVALID,
            Failure.of(body.errors),
            account=account,
        )
    _show_refusal(form, exceptions.ValidationError(body.errors))
    return None


@dataclass(frozen=True)
class PreviewRow:
    number: str
    period: str
    late_fee: Decimal
    principal: Decimal


@dataclass(frozen=True)
class Preview:
    amount: Decimal
    rows: list[PreviewRow]
    credit_used: Decimal
    surplus: Decimal


def _preview(position: AccountPosition, amount: Decimal) -> Preview:
    plan = plan_allocation(
        position.items, amount, position.receivable_credit, position.wallet_credit
    )
    rows = [
        PreviewRow(
            part.item.number or _("Arrears at go-live"),
            part.item.period,
            part.late_fee,
            part.principal,
        )
        for part in plan.allocations
    ]
    return Preview(amount, rows, plan.credit_used, plan.surplus)


def _take(request: HttpRequest, account: Account, form: Form) -> tuple[Receipt | None, int | None]:
    """Post the payment: its receipt, or ``None`` with the refusal on the form (and the id of
    the payment posted first under the key, when the key was spent on another payment)."""
    values = _validated(request, account, form, record=True)
    if values is None:
        return None, None
    try:
        result = post_payment(actor(request), **values)
    except PaymentConflict as exc:
        _show_refusal(form, exc)
        return None, exc.payment_id
    except ValidationError as exc:
        _show_refusal(form, exc)
        return None, None
    except PermissionDenied as exc:
        form.add_errors({NON_FIELD: [str(exc) or _("You may not take this payment.")]})
        return None, None
    if result.created:
        messages.success(
            request,
            _("%(amount)s yuan received for account %(account)s.")
            % {"amount": f"{result.payment.amount:,}", "account": account.number},
        )
    else:
        messages.info(
            request,
            _("This payment had been posted already (the form was sent again): nothing more "
              "was taken."),
        )  # fmt: skip
    return Receipt.objects.get(payment=result.payment), None


@page("payments", "due")
def counter_account(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(
        scoped(request, Account.objects.select_related("customer", "premise", "site")),
        pk=account_id,
    )
    principal = actor(request)
    assert principal.tenant is not None
    today = principal.tenant.local_today()
    may_take = may(request, "payments", "add", account.site_id)
    # A closed account takes no payment: the form is not offered (a form sent from an older
    # page is refused by the service, in its words).
    closed = account.status == AccountStatus.CLOSED
    shift = open_shift_of(principal) if may_take else None
    approvals = _holiday_approvals(account, principal, today) if may_take else None
    position = account_due(account, today)
    preview: Preview | None = None
    conflicting: Payment | None = None
    status = 200
    if request.method == "POST":
        if not may_take:
            raise PermissionDenied
        form = _payment_form(request.POST, {}, approvals)
        if "preview" in request.POST:
            values = _validated(request, account, form, record=False)
            if values is not None:
                preview = _preview(position, values["amount"])
        else:
            receipt, payment_id = _take(request, account, form)
            if receipt is not None:
                return redirect("console:receipt", receipt_id=receipt.pk)
            if payment_id is not None:
                conflicting = scoped(request, Payment.objects.all()).filter(pk=payment_id).first()
                # The key is spent on another payment: a new one for a new payment.
                form.data = {**form.data, "idempotency_key": new_key()}  # type: ignore[dict-item]
        status = 200 if form.ok else 400
    else:
        due = position.amount_due
        form = _payment_form(
            None,
            {
                "channel": Channel.COUNTER_CASH,
                "amount": f"{due}" if due > 0 else "",
                "idempotency_key": new_key(),
            },
            approvals,
        )
    wallet = -position.wallet
    context = {
        "account": account,
        "premise": account.premise,
        "customer": account.customer,
        "today": today,
        "position": position,
        "openings": [item for item in position.items if item.opening_id is not None],
        "bills": [item for item in position.items if item.bill_id is not None],
        "wallet": wallet,
        "wallet_label": _("Prepaid balance")
        if account.payment_mode == PaymentMode.PREPAID
        else _("Credit on account"),
        "wallet_owed": wallet < ZERO,
        "may_take": may_take and (not closed or request.method == "POST"),
        "closed": closed,
        "closing": closing_under_way(account),
        # Counter payments belong to the cashier's open shift, at the account's site.
        "shift": shift,
        "shift_here": shift is not None and shift.site_id == account.site_id,
        "form": form,
        "preview": preview,
        "conflicting": conflicting,
        "recent": _recent_payments(request, account),
        "sees_payments": can(request, "payments"),
        "sees_closing": can(request, "account_closings"),
    }
    return render(request, "console/collection/counter_account.html", context, status=status)


def _recent_payments(request: HttpRequest, account: Account) -> list[Payment]:
    """The account's latest payments, so a second payment of the same bills is seen before it
    is taken."""
    return list(
        scoped(request, Payment.objects.filter(account=account))
        .prefetch_related("receipts", "reversals")
        .order_by("-id")[:RECENT_PAYMENTS]
    )
