"""Console pages: cashier shifts (日结), holiday cash approvals and the hand-over to the bank.

"My shift" is the cashier's: open a shift with a float, watch the running expected figures (from
the ledger) while taking payments, close it with the cash count and the card terminal's
settlement total, count again when a supervisor sends the count back. Supervisors see every
shift of their sites, the differences waiting for approval first, and approve or reject them.
Holiday cash approvals are given ahead of a day the bank is closed; the cash that goes to the
bank after a close is recorded with its bank slip.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from collection.api_shifts import (
    CashApprovalRequestSerializer,
    CloseShiftSerializer,
    DecisionSerializer,
    HandoverRequestSerializer,
    OpenShiftSerializer,
)
from collection.models import CashApproval, CashHandover, Shift, ShiftState
from collection.services import cash_rules, shifts
from console.access import SITES, can, page, principal_of, scope_for, scoped, site_choices
from console.forms import Field, Form, api_request
from console.lists import Column, Listing, listing_response
from tenancy.models import User
from tenancy.principal import Principal
from tenancy.roles import Role

MONEY_STEP = "0.01"


def _actor(request: HttpRequest) -> Principal:
    actor = principal_of(request)
    assert actor is not None  # @page
    return actor


def _shift_url(shift: Shift) -> str:
    return reverse("console:shift", args=[shift.pk])


def _cashier_choices() -> list[tuple[int, str]]:
    """Staff who hold the cashier role somewhere."""
    users = User.tenant_staff.filter(is_active=True, grants__role=Role.CASHIER).distinct()
    return [(user.pk, user.label) for user in users.order_by("username")]


# --- my shift ---------------------------------------------------------------------------------


def _open_form(request: HttpRequest) -> Form:
    return Form(
        [
            Field("site", _("Site"), kind="select", required=True, choices=site_choices(request)),
            Field("float_amount", _("Float (yuan)"), kind="number", required=True,
                  step=MONEY_STEP,
                  help=_("备用金: the change in the drawer at opening; 0 if none.")),
        ],
        request.POST if request.method == "POST" else None,
        initial={"float_amount": "0.00"},
    )  # fmt: skip


def _close_form(request: HttpRequest) -> Form:
    return Form(
        [
            Field("counted_cash", _("Cash counted (yuan)"), kind="number", required=True,
                  step=MONEY_STEP, autofocus=True,
                  help=_("Everything in the drawer, the float included.")),
            Field("counted_card", _("Card settlement (yuan)"), kind="number", step=MONEY_STEP,
                  help=_("The card terminal's settlement total; 0 if no card was taken.")),
            Field("note", _("Note"), kind="textarea",
                  help=_("What explains a difference, for the supervisor.")),
        ],
        request.POST if request.method == "POST" else None,
    )  # fmt: skip


@page("shifts", "add")
def my_shift(request: HttpRequest) -> HttpResponseBase:
    actor = _actor(request)
    mine = Shift.objects.filter(cashier_id=actor.id).select_related("site")
    current = mine.filter(state=ShiftState.OPEN).first()
    recount = mine.filter(state=ShiftState.RECOUNT).order_by("-pk").first()
    counting = current or recount
    form = _close_form(request) if counting else _open_form(request)
    if request.method == "POST":
        with form.attempt():
            if counting is not None:
                count = CloseShiftSerializer(data=form.cleaned())
                count.is_valid(raise_exception=True)
                closed = shifts.close_shift(actor, counting, **count.validated_data)
                if closed.state == ShiftState.CLOSED:
                    messages.success(request, gettext("Shift closed: the count matches."))
                else:
                    messages.warning(
                        request,
                        gettext("Shift counted with a difference: it waits for a supervisor."),
                    )
            else:
                body = OpenShiftSerializer(
                    data=form.cleaned(), context={"request": api_request(request)}
                )
                body.is_valid(raise_exception=True)
                shifts.open_shift(actor, **body.validated_data)
                messages.success(request, gettext("Shift opened."))
            return redirect(reverse("console:my-shift"))
    return render(
        request,
        "console/collection/my_shift.html",
        {
            "shift": counting,
            "figures": shifts.shift_figures(counting) if counting else None,
            "form": form,
            "recent": list(mine.exclude(state=ShiftState.OPEN).order_by("-pk")[:5]),
        },
        status=400 if form.submitted and not form.ok else 200,
    )


# --- supervisors: every shift, differences to approve -----------------------------------------


class ShiftFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)
    state = django_filters.ChoiceFilter(label=_("State"), choices=ShiftState.choices)

    class Meta:
        model = Shift
        fields: list[str] = []


SHIFT_COLUMNS = [
    Column("id", _("Shift"), sort="id", link=_shift_url, numeric=True),
    Column("site", _("Site")),
    Column("cashier_label", _("Cashier")),
    Column("get_state_display", _("State")),
    Column("opened_at", _("Opened at")),
    Column("closed_at", _("Closed at")),
    Column("float_amount", _("Float"), numeric=True),
    Column("expected_cash", _("Expected cash"), numeric=True),
    Column("counted_cash", _("Cash counted"), numeric=True),
    Column("difference_cash", _("Cash difference"), numeric=True),
    Column("difference_card", _("Card difference"), numeric=True),
]


@page("shifts")
def shift_list(request: HttpRequest) -> HttpResponseBase:
    shifts_here = scoped(request, Shift.objects.select_related("site"))
    listing = Listing(
        request, shifts_here, columns=SHIFT_COLUMNS, filterset=ShiftFilter, export_name="shifts"
    )
    approvable = scope_for(request, "shifts", "approve")
    pending = [
        shift
        for shift in shifts_here.filter(state=ShiftState.PENDING).order_by("pk")[:50]
        if approvable.allows(shift.site_id)
    ]
    return listing_response(
        request, "console/collection/shifts.html", {"listing": listing, "pending": pending}
    )


DECISIONS = [("approve", _("Approve the difference")),
             ("reject", _("Reject the count: count again"))]  # fmt: skip


def _decision_form(request: HttpRequest) -> Form:
    """Nothing is preselected: a supervisor chooses to approve or reject (an approval posts the
    difference to cash over and short), so a hurried submit cannot approve by default."""
    return Form(
        [
            Field("decision", _("Decision"), kind="select", required=True,
                  choices=[("", _("— choose —")), *DECISIONS]),
            Field("note", _("Note"), kind="textarea", required=True,
                  help=_("Why: what explains the difference, or what to count again.")),
        ],
        request.POST if request.method == "POST" else None,
    )  # fmt: skip


def _shift_page(request: HttpRequest, shift: Shift, form: Form) -> HttpResponseBase:
    """The shift, and the decision form for a supervisor who may decide on its difference; one
    who may not (their own shift or count) is told why instead of being offered the form."""
    can_decide = shift.state == ShiftState.PENDING and scope_for(
        request, "shifts", "approve"
    ).allows(shift.site_id)
    decide_refused = ""
    if can_decide:
        try:
            shifts.check_may_decide(_actor(request), shift)
        except ValidationError as exc:
            can_decide, decide_refused = False, " ".join(exc.messages)
        except PermissionDenied as exc:
            can_decide, decide_refused = False, str(exc)
    return render(
        request,
        "console/collection/shift.html",
        {
            "shift": shift,
            "figures": shifts.shift_figures(shift),
            "form": form,
            "can_decide": can_decide,
            "decide_refused": decide_refused,
            "payments": shift.payments.select_related("account").prefetch_related("reversals")[
                :200
            ],
            "movements": shifts.other_movements(shift),
        },
        status=400 if form.submitted and not form.ok else 200,
    )


@page("shifts")
def shift_detail(request: HttpRequest, shift_id: int) -> HttpResponseBase:
    shift = get_object_or_404(scoped(request, Shift.objects.select_related("site")), pk=shift_id)
    return _shift_page(request, shift, _decision_form(request))


@page("shifts", "approve")
def shift_decide(request: HttpRequest, shift_id: int) -> HttpResponseBase:
    shift = get_object_or_404(scoped(request, Shift.objects.select_related("site")), pk=shift_id)
    if request.method != "POST":
        return redirect(_shift_url(shift))
    form = _decision_form(request)
    actor = _actor(request)
    with form.attempt():
        values = form.cleaned()
        decision = values.get("decision")
        body = DecisionSerializer(data={"note": values.get("note", "")})
        if decision not in dict(DECISIONS):
            errors = {"decision": [gettext("Choose a decision: approve the difference or reject "
                                           "the count.")]}  # fmt: skip
            if not body.is_valid():
                errors.update(
                    {name: [str(m) for m in found] for name, found in body.errors.items()}
                )
            raise ValidationError(errors)
        body.is_valid(raise_exception=True)
        note = body.validated_data["note"]
        if decision == "approve":
            shifts.approve_difference(actor, shift, note)
            messages.success(request, gettext("Difference approved: the shift is closed."))
        else:
            shifts.reject_count(actor, shift, note)
            messages.success(request, gettext("Count rejected: the cashier counts again."))
        return redirect(_shift_url(shift))
    return _shift_page(request, shift, form)


# --- holiday cash approvals -------------------------------------------------------------------


class ApprovalFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)
    business_day = django_filters.DateFilter(label=_("Business day"))

    class Meta:
        model = CashApproval
        fields: list[str] = []


APPROVAL_COLUMNS = [
    Column("id", _("Approval"), sort="id", numeric=True),
    Column("site", _("Site")),
    Column("account.number", _("Account")),
    Column("cashier_label", _("Cashier")),
    Column("business_day", _("Business day")),
    Column("amount", _("At most"), numeric=True),
    Column("reason", _("Reason")),
    Column("actor_label", _("Approved by")),
    Column(
        "used",
        _("Used"),
        value=lambda a: (
            gettext("Used by payment %(id)s") % {"id": a.payment_id}
            if a.payment_id
            else gettext("Not used")
        ),
    ),
]


@page("cash_approvals")
def cash_approvals(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, CashApproval.objects.select_related("site", "account")),
        columns=APPROVAL_COLUMNS,
        filterset=ApprovalFilter,
        export_name="cash-approvals",
    )
    return listing_response(
        request,
        "console/collection/cash_approvals.html",
        {"listing": listing, "can_add": can(request, "cash_approvals", "add")},
    )


@page("cash_approvals", "add")
def cash_approval_new(request: HttpRequest) -> HttpResponseBase:
    form = Form(
        [
            Field("account", _("Account number"), required=True, autofocus=True,
                  help=_("The prepaid account to be topped up.")),
            Field("cashier", _("Cashier"), kind="select", required=True,
                  choices=_cashier_choices()),
            Field("amount", _("At most (yuan)"), kind="number", required=True, step=MONEY_STEP,
                  help=_("The customer may pay less, never more; at most the policy's cap.")),
            Field("business_day", _("Business day"), kind="date", required=True,
                  help=_("A day the bank is closed (a weekend or a public holiday).")),
            Field("reason", _("Reason"), kind="textarea", required=True),
        ],
        request.POST if request.method == "POST" else None,
    )  # fmt: skip
    if request.method == "POST":
        with form.attempt():
            body = CashApprovalRequestSerializer(
                data=form.cleaned(), context={"request": api_request(request)}
            )
            body.is_valid(raise_exception=True)
            cash_rules.grant_cash_approval(_actor(request), **body.validated_data)
            messages.success(request, gettext("Holiday cash approved."))
            return redirect(reverse("console:cash-approvals"))
    return render(
        request,
        "console/collection/cash_approval_new.html",
        {"form": form},
        status=400 if form.submitted and not form.ok else 200,
    )


# --- hand-over to the bank --------------------------------------------------------------------


HANDOVER_COLUMNS = [
    Column("id", _("Hand-over"), sort="id", numeric=True),
    Column("handed_on", _("Handed over on")),
    Column("site", _("Site")),
    Column("cashier_label", _("Cashier")),
    Column("amount", _("Amount"), numeric=True),
    Column("bank", _("Bank")),
    Column("slip_reference", _("Bank slip")),
    Column("actor_label", _("Recorded by")),
]


@page("cash_handovers")
def cash_handovers(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, CashHandover.objects.select_related("site")),
        columns=HANDOVER_COLUMNS,
        export_name="cash-handovers",
    )
    return listing_response(
        request,
        "console/collection/cash_handovers.html",
        {"listing": listing, "can_add": can(request, "cash_handovers", "add")},
    )


@page("cash_handovers", "add")
def cash_handover_new(request: HttpRequest) -> HttpResponseBase:
    actor = _actor(request)
    tenant = actor.tenant
    assert tenant is not None
    form = Form(
        [
            Field("site", _("Site"), kind="select", required=True, choices=site_choices(request)),
            Field("cashier", _("Cashier"), kind="select", choices=_cashier_choices(),
                  help=_("Whose cash: yours when left empty (a supervisor may name a cashier).")),
            Field("amount", _("Amount (yuan)"), kind="number", required=True, step=MONEY_STEP),
            Field("bank", _("Bank code"), required=True, help=_("icbc, ccb, abc, boc…")),
            Field("slip_reference", _("Bank slip number"), required=True),
            Field("handed_on", _("Handed over on"), kind="date", required=True),
        ],
        request.POST if request.method == "POST" else None,
        initial={"handed_on": timezone.localdate(timezone=tenant.zone).isoformat()},
    )  # fmt: skip
    if request.method == "POST":
        with form.attempt():
            body = HandoverRequestSerializer(
                data=form.cleaned(), context={"request": api_request(request)}
            )
            body.is_valid(raise_exception=True)
            data: dict[str, Any] = dict(body.validated_data)
            cashier = data.pop("cashier") or actor.user
            if cashier is None:
                raise ValidationError({"cashier": [gettext("Name the cashier.")]})
            handed_on = data.pop("handed_on") or timezone.localdate(timezone=tenant.zone)
            shifts.hand_over_cash(actor, cashier=cashier, handed_on=handed_on, **data)
            messages.success(request, gettext("Hand-over recorded."))
            return redirect(reverse("console:cash-handovers"))
    on_hand = None
    if actor.user is not None and actor.id is not None:
        on_hand = shifts.cash_on_hand_figure(tenant, actor.id, actor.label)
    return render(
        request,
        "console/collection/cash_handover_new.html",
        {"form": form, "on_hand": on_hand},
        status=400 if form.submitted and not form.ok else 200,
    )


urlpatterns: list[URLPattern] = [
    path("my-shift/", my_shift, name="my-shift"),
    path("shifts/", shift_list, name="shifts"),
    path("shifts/<int:shift_id>/", shift_detail, name="shift"),
    path("shifts/<int:shift_id>/decide/", shift_decide, name="shift-decide"),
    path("cash-approvals/", cash_approvals, name="cash-approvals"),
    path("cash-approvals/new/", cash_approval_new, name="cash-approval-new"),
    path("cash-handovers/", cash_handovers, name="cash-handovers"),
    path("cash-handovers/new/", cash_handover_new, name="cash-handover-new"),
]
