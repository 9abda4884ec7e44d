"""Payments, their reversal (冲正), the reversals and the failed payment attempts.

A payment's page shows what it paid (its allocations), its receipt, its journal entry and, once
reversed, the reversal with its own entry. The reverse button is offered to whom
``check_may_reverse`` (the service's own rule) lets reverse it: a supervisor of its site on its
business day, finance on any day, never the person who took it; anyone else reads why not.
The failed attempts are kept for finance to trace a payment a customer or bank says was made.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from collection.api import ReversalSerializer
from collection.models import (
    AttemptOutcome,
    Channel,
    Payment,
    PaymentAllocation,
    PaymentAttempt,
    PaymentReversal,
    PaymentState,
    Receipt,
    ShiftState,
)
from collection.services.reversal import check_may_reverse, reverse_payment
from console.access import SITES, can, page, scoped
from console.filters import SINCE_LABEL, UNTIL_LABEL, LocalDayFilter
from console.forms import Field, Form
from console.lists import Column, Listing, listing_response
from console.pages.billing.common import actor
from console.pages.customers._common import may
from ledger.models import JournalLine
from tenancy.models import ActorKind, User


def _staff_choices() -> list[tuple[int, str]]:
    return [(user.pk, user.label) for user in User.tenant_staff.order_by("username")]


class DayFilter(LocalDayFilter):
    """A business day (a date column, already in the tenant's zone): from or up to it."""

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        if value is None:
            return qs
        lookup = "lte" if self.upto else "gte"
        return qs.filter(**{f"{self.field_name}__{lookup}": value})


class PaymentFilter(django_filters.FilterSet):
    account = django_filters.CharFilter(
        label=gettext_lazy("Account number"), field_name="account__number"
    )
    site = django_filters.ModelChoiceFilter(label=gettext_lazy("Site"), queryset=SITES)
    channel = django_filters.ChoiceFilter(label=gettext_lazy("Channel"), choices=Channel.choices)
    cashier = django_filters.ChoiceFilter(
        label=gettext_lazy("Taken by"), choices=_staff_choices, method="filter_cashier"
    )
    state = django_filters.ChoiceFilter(
        label=gettext_lazy("State"), choices=PaymentState.choices, method="filter_state"
    )
    since = DayFilter(field_name="paid_on", label=gettext_lazy("From (business day)"))
    until = DayFilter(field_name="paid_on", label=gettext_lazy("To (business day)"), upto=True)

    class Meta:
        model = Payment
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.form.fields["account"].widget = forms.TextInput(attrs={"size": 12})

    def filter_cashier(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(actor_kind=ActorKind.STAFF, actor_id=value)

    def filter_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == PaymentState.POSTED:
            return queryset.filter(reversals__isnull=True)
        return queryset.filter(reversals__isnull=False)


def payment_url(payment: Payment) -> str:
    return reverse("console:payment", args=[payment.pk])


def _receipt_number(payment: Payment) -> str:
    receipts = payment.receipts.all()
    return receipts[0].display_number if receipts else ""


def _state(payment: Payment) -> str:
    return str(
        PaymentState.REVERSED.label if payment.reversals.all() else PaymentState.POSTED.label
    )


PAYMENT_COLUMNS = [
    Column("received_at", gettext_lazy("Received at"), sort="id", link=payment_url),
    Column("paid_on", gettext_lazy("Business day")),
    Column("receipt", gettext_lazy("Receipt"), value=_receipt_number),
    Column("account.number", gettext_lazy("Account")),
    Column("get_channel_display", gettext_lazy("Channel")),
    Column("amount", gettext_lazy("Amount (yuan)"), numeric=True),
    Column("state", gettext_lazy("State"), value=_state),
    Column("actor_label", gettext_lazy("Taken by")),
    Column("site.name", gettext_lazy("Site")),
]


@page("payments")
def payments(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(
            request,
            Payment.objects.select_related("account", "site").prefetch_related(
                "receipts", "reversals"
            ),
        ),
        columns=PAYMENT_COLUMNS,
        filterset=PaymentFilter,
        default_sort="-id",
        export_name="payments",
    )
    return listing_response(request, "console/collection/payments.html", {"listing": listing})


def _scoped_payment(request: HttpRequest, payment_id: int) -> Payment:
    return get_object_or_404(
        scoped(request, Payment.objects.select_related("account__customer", "site", "shift")),
        pk=payment_id,
    )


def reversal_refusal(request: HttpRequest, payment: Payment) -> str | None:
    """Why this person may not reverse the payment (the service's words), or ``None``."""
    principal = actor(request)
    assert principal.tenant is not None
    if PaymentReversal.objects.filter(payment=payment).exists():
        return _("The payment is reversed already.")
    try:
        check_may_reverse(principal, payment, principal.tenant.local_today())
    except (PermissionDenied, ValidationError) as exc:
        if isinstance(exc, ValidationError):
            return " ".join(exc.messages)
        return str(exc) or _("You may not reverse payments.")
    return None


@page("payments")
def payment(request: HttpRequest, payment_id: int) -> HttpResponse:
    found = _scoped_payment(request, payment_id)
    reversal = PaymentReversal.objects.filter(payment=found).first()
    allocations = list(
        PaymentAllocation.objects.filter(payment=found)
        .select_related("bill", "opening")
        .order_by("pk")
    )
    entries = [found.entry_id] + ([reversal.entry_id] if reversal else [])
    lines = list(
        JournalLine.objects.filter(entry_id__in=entries)
        .select_related("ledger_account", "entry")
        .order_by("entry_id", "pk")
    )
    refusal = reversal_refusal(request, found)
    return render(
        request,
        "console/collection/payment.html",
        {
            "payment": found,
            "reversal": reversal,
            "allocations": allocations,
            "receipt": Receipt.objects.filter(payment=found).first(),
            "sees_receipt": may(request, "receipts", "view", found.site_id),
            "lines": lines,
            "may_reverse": refusal is None,
            "refusal": refusal,
        },
    )


def _reason_form(data: Any) -> Form:
    return Form(
        [
            Field(
                "reason",
                gettext_lazy("Reason"),
                kind="textarea",
                required=True,
                autofocus=True,
                help=gettext_lazy("Kept with the reversal and printed on the void receipt."),
            )
        ],
        data,
    )


@page("payments", "reverse")
def payment_reverse(request: HttpRequest, payment_id: int) -> HttpResponse:
    """冲正 with a reason, after a page that says what will happen. The service decides who
    may; its refusal shows on the form."""
    found = _scoped_payment(request, payment_id)
    form = _reason_form(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        with form.attempt():
            body = ReversalSerializer(data={"reason": form.value("reason")})
            body.is_valid(raise_exception=True)
            try:
                reverse_payment(actor(request), found, body.validated_data["reason"])
            except PermissionDenied as exc:
                raise ValidationError(str(exc) or _("You may not reverse payments.")) from exc
        if form.ok:
            messages.success(
                request,
                _("Payment of %(amount)s yuan to account %(account)s reversed; its receipt is "
                  "void.") % {"amount": f"{found.amount:,}", "account": found.account.number},
            )  # fmt: skip
            return redirect("console:payment", payment_id=found.pk)
        status = 400
    else:
        refusal = reversal_refusal(request, found)
        if refusal is not None:
            form.add_errors({"__all__": [refusal]})
    receipt = Receipt.objects.filter(payment=found).first()
    consequences = [
        _(
            "The bills it paid are open again, with their late fees as if it had never "
            "been made; a top-up is taken off the wallet."
        ),
        _("A reversing journal entry is posted; the payment itself is never changed."),
        _("Receipt %(number)s is void (作废) and keeps its number.")
        % {"number": receipt.display_number if receipt else "—"},
    ]
    if found.channel == Channel.COUNTER_CASH and (
        found.shift is None or found.shift.state != ShiftState.OPEN
    ):
        consequences.append(
            _(
                "Its shift is closed: the %(amount)s yuan handed back to the customer comes "
                "out of %(cashier)s's next shift, whose expected cash is that much lower."
            )
            % {"amount": f"{found.amount:,}", "cashier": found.actor_label}
        )
    if found.channel == Channel.COUNTER_CARD and (
        found.shift is None or found.shift.state != ShiftState.OPEN
    ):
        consequences.append(
            _(
                "Its shift is closed: refund the %(amount)s yuan on the card terminal; the "
                "refund is in %(cashier)s's next card settlement, whose expected card total "
                "is that much lower."
            )
            % {"amount": f"{found.amount:,}", "cashier": found.actor_label}
        )
    return render(
        request,
        "console/confirm.html",
        {
            "title": _("Reverse the payment of %(amount)s yuan to account %(account)s")
            % {"amount": f"{found.amount:,}", "account": found.account.number},
            "consequences": consequences,
            "form": form,
            "action_url": reverse("console:payment-reverse", args=[found.pk]),
            "cancel_url": reverse("console:payment", args=[found.pk]),
            "confirm_label": _("Reverse the payment"),
        },
        status=status,
    )


# --- reversals -------------------------------------------------------------------------------


class ReversalFilter(django_filters.FilterSet):
    account = django_filters.CharFilter(
        label=gettext_lazy("Account number"), field_name="payment__account__number"
    )
    site = django_filters.ModelChoiceFilter(label=gettext_lazy("Site"), queryset=SITES)
    since = DayFilter(field_name="reversed_on", label=gettext_lazy("From (business day)"))
    until = DayFilter(field_name="reversed_on", label=gettext_lazy("To (business day)"), upto=True)

    class Meta:
        model = PaymentReversal
        fields: list[str] = []


REVERSAL_COLUMNS = [
    Column("reversed_at", gettext_lazy("Reversed at"), sort="id"),
    Column(
        "payment",
        gettext_lazy("Payment"),
        value=lambda r: r.payment.received_at,
        link=lambda r: payment_url(r.payment),
    ),
    Column("payment.account.number", gettext_lazy("Account")),
    Column("payment.amount", gettext_lazy("Amount (yuan)"), numeric=True),
    Column("payment.actor_label", gettext_lazy("Taken by")),
    Column("actor_label", gettext_lazy("Reversed by")),
    Column("reason", gettext_lazy("Reason")),
    Column("site.name", gettext_lazy("Site")),
]


@page("payments")
def reversals(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, PaymentReversal.objects.select_related("payment__account", "site")),
        columns=REVERSAL_COLUMNS,
        filterset=ReversalFilter,
        export_name="payment-reversals",
    )
    return listing_response(request, "console/collection/reversals.html", {"listing": listing})


# --- failed attempts -------------------------------------------------------------------------


class AttemptFilter(django_filters.FilterSet):
    account = django_filters.CharFilter(
        label=gettext_lazy("Account number"), field_name="account_number"
    )
    site = django_filters.ModelChoiceFilter(label=gettext_lazy("Site"), queryset=SITES)
    outcome = django_filters.ChoiceFilter(
        label=gettext_lazy("Outcome"), choices=AttemptOutcome.choices
    )
    channel = django_filters.ChoiceFilter(label=gettext_lazy("Channel"), choices=Channel.choices)
    code = django_filters.CharFilter(label=gettext_lazy("Code"))
    cashier = django_filters.ChoiceFilter(
        label=gettext_lazy("By"), choices=_staff_choices, method="filter_cashier"
    )
    since = LocalDayFilter(field_name="attempted_at", label=SINCE_LABEL)
    until = LocalDayFilter(field_name="attempted_at", label=UNTIL_LABEL, upto=True)

    class Meta:
        model = PaymentAttempt
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("account", "code"):
            self.form.fields[name].widget = forms.TextInput(attrs={"size": 12})

    def filter_cashier(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(actor_kind=ActorKind.STAFF, actor_id=value)


ATTEMPT_COLUMNS = [
    Column("attempted_at", gettext_lazy("Attempted at"), sort="id"),
    Column("get_outcome_display", gettext_lazy("Outcome")),
    Column("reason", gettext_lazy("Reason")),
    Column("code", gettext_lazy("Code")),
    Column("channel", gettext_lazy("Channel"), value=lambda a: _channel_label(a.channel)),
    Column("account_number", gettext_lazy("Account")),
    Column("amount", gettext_lazy("Amount (yuan)"), numeric=True),
    Column("external_reference", gettext_lazy("External reference")),
    Column("idempotency_key", gettext_lazy("Idempotency key")),
    Column("actor_label", gettext_lazy("By")),
    Column(
        "payment",
        gettext_lazy("Payment posted first"),
        value=lambda a: a.payment_id,
        link=lambda a: reverse("console:payment", args=[a.payment_id]) if a.payment_id else None,
    ),
]


def _channel_label(value: str) -> str:
    try:
        return str(Channel(value).label)
    except ValueError:
        return value


@page("payment_attempts")
def attempts(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, PaymentAttempt.objects.all()),
        columns=ATTEMPT_COLUMNS,
        filterset=AttemptFilter,
        export_name="payment-attempts",
    )
    return listing_response(
        request,
        "console/collection/attempts.html",
        {"listing": listing, "sees_payments": can(request, "payments")},
    )
