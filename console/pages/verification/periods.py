"""Period consumption: choose a site and a period, compute it (admins and verifiers), and see
how many accounts were computed, held back and billed; each held-back account with its reasons
and links to what holds it (a queue item, a correction, its earlier period).

Computing runs as a task (``verification.computations``): the page starts it and watches its
progress (accounts done of total) by htmx polling, so no web worker is held while a large site
is computed; when it ends, the fragment shows the outcome and a link to the fresh figures. A
computation whose worker died (no progress for ``BARS_STALL_MINUTES``) is shown stalled, polled
slowly, and may be started again by those who may compute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.runs.services import billed_account_count
from console.access import can, page, principal_of, require, scoped, site_choices
from console.forms import Field, Form, api_request
from console.lists import Column, Listing
from metering.models import Meter
from tenancy.models import Site
from tenancy.progress import idle_minutes
from verification.api import BoundaryReadingsField, ComputeSerializer
from verification.computations import resume_period_computation, start_period_computation
from verification.holds import CORRECTION, EARLIER_PERIOD, ITEM, Hold, holds_of
from verification.models import ComputationState, PeriodComputation, PeriodConsumption, PeriodStatus
from verification.periods import PeriodError


def _period_url(period: PeriodConsumption) -> str:
    return reverse("console:period", args=[period.pk])


COLUMNS = [
    Column("account.number", _("Account"), link=_period_url, sort="id"),
    Column("status", _("Status"), value=lambda period: period.get_status_display()),
    Column("total", _("Consumption"), numeric=True),
    Column("estimated", _("Estimated"), value=lambda period: _("yes") if period.estimated else ""),
    Column("hold_reason", _("Why it is held back")),
]

# Which accounts of the period the list shows: the held back by default (what a verifier
# works on), or the computed, the estimated, or every one.
SHOWN = {
    "held_back": (_("Held back"), Q(status=PeriodStatus.HELD_BACK)),
    "computed": (_("Computed"), Q(status=PeriodStatus.COMPUTED)),
    "estimated": (_("Estimated"), Q(estimated=True)),
    "all": (_("All"), Q()),
}


def _shown_accounts(request: HttpRequest) -> str:
    asked = request.GET.get("show", "")
    return asked if asked in SHOWN else "held_back"


def _selection_form(request: HttpRequest, data: Any) -> Form:
    return Form(
        [
            Field(
                "site",
                _("Site"),
                kind="select",
                required=True,
                choices=site_choices(request),
            ),
            Field("period", _("Period (YYYY-MM)"), required=True, help=_("For example 2026-10.")),
        ],
        data,
    )


def _chosen(request: HttpRequest, form: Form) -> tuple[Site, str] | None:
    """The site and period typed, validated as the API validates them (sites outside the
    person's grant answer like ids that do not exist)."""
    with form.attempt():
        body = ComputeSerializer(data=form.cleaned(), context={"request": api_request(request)})
        body.is_valid(raise_exception=True)
        return body.validated_data["site"], body.validated_data["period"]
    return None


def _figures(site: Site, period: str) -> dict[str, int]:
    """Counted from the indexes alone (``period_site``, ``bill_site_period`` cover what is
    counted): on 100,000 accounts reading the rows took 560 ms a page."""
    counts = PeriodConsumption.objects.filter(site=site, period=period).aggregate(
        computed=Count("status", filter=Q(status=PeriodStatus.COMPUTED)),
        held_back=Count("status", filter=Q(status=PeriodStatus.HELD_BACK)),
        estimated=Count("estimated", filter=Q(estimated=True)),
    )
    return {**counts, "billed": billed_account_count(site, period)}


def hold_link(hold: Hold) -> tuple[str, str]:
    """Where a hold is cleared, and what the link says."""
    if hold.kind == ITEM:
        return (
            reverse("console:verification-item", args=[hold.object_id]),
            gettext("Suspect reading of meter %(serial)s") % {"serial": hold.subject},
        )
    if hold.kind == CORRECTION:
        return (
            reverse("console:correction", args=[hold.object_id]),
            gettext("Correction of meter %(serial)s awaiting approval") % {"serial": hold.subject},
        )
    assert hold.kind == EARLIER_PERIOD
    return (
        reverse("console:period", args=[hold.object_id]),
        gettext("Earlier period %(period)s, also held back") % {"period": hold.subject},
    )


def _compute(
    request: HttpRequest, form: Form
) -> tuple[tuple[Site, str] | None, PeriodComputation | None]:
    """Start computing the chosen site's period in the background; errors land on the form.
    Gives the site and period chosen (when they were valid, so a refused start still shows
    the period's figures) and the computation started."""
    request.site_scope = require(request, "periods", "compute")  # type: ignore[attr-defined]
    chosen = _chosen(request, form)
    if chosen is None:
        return None, None
    site, period = chosen
    principal = principal_of(request)
    assert principal is not None  # @page let in only staff of a tenant
    with form.attempt():
        try:
            return chosen, start_period_computation(principal, site, period)
        except PeriodError as exc:
            raise ValidationError({"period": [str(exc)]}) from exc
    return chosen, None


def computation_context(request: HttpRequest, computation: PeriodComputation) -> dict[str, Any]:
    """What the computation's fragment shows: its progress, whether it stalled (no progress
    for ``BARS_STALL_MINUTES``) and whether this person may start it again."""
    return {
        "computation": computation,
        "idle_minutes": idle_minutes(computation.progressed_at),
        "may_resume": computation.stalled and can(request, "periods", "compute"),
    }


def _scoped_computation(request: HttpRequest, computation_id: int) -> PeriodComputation:
    return get_object_or_404(
        scoped(request, PeriodComputation.objects.select_related("site")), pk=computation_id
    )


@page("periods")
def computation_progress(request: HttpRequest, computation_id: int) -> HttpResponse:
    """The progress fragment the periods page polls while a computation runs (every 2 s, every
    30 s once it stalled)."""
    computation = _scoped_computation(request, computation_id)
    return render(
        request,
        "console/verification/_computation.html",
        computation_context(request, computation),
    )


@page("periods", "compute")
def computation_resume(request: HttpRequest, computation_id: int) -> HttpResponse:
    """Start a stalled computation again (POST): its task is queued again and resumes after the
    last account computed. Back to the periods page watching it either way; a refusal (it
    ended, or it moves again) is shown there."""
    computation = _scoped_computation(request, computation_id)
    query = urlencode(
        {
            "site": str(computation.site_id),
            "period": computation.period,
            "computation": str(computation.pk),
        }
    )
    back = f"{reverse('console:periods')}?{query}"
    if request.method != "POST":
        return redirect(back)
    principal = principal_of(request)
    assert principal is not None  # @page let in only staff of a tenant
    try:
        resume_period_computation(principal, computation.pk)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    messages.success(request, gettext("Computation started again; it resumes where it stopped."))
    return redirect(back)


@page("periods")
def periods(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = _selection_form(request, request.POST)
        chosen, computation = _compute(request, form)
        if computation is not None:
            query = urlencode(
                {
                    "site": str(computation.site_id),
                    "period": computation.period,
                    "computation": str(computation.pk),
                }
            )
            return redirect(f"{reverse('console:periods')}?{query}")
    else:
        asked = "site" in request.GET or "period" in request.GET
        form = _selection_form(request, request.GET if asked else None)
        chosen = _chosen(request, form) if asked else None
    context: dict[str, Any] = {
        "form": form,
        "can_compute": can(request, "periods", "compute"),
        "chosen": chosen,
    }
    if chosen is not None:
        site, period = chosen
        shown = _shown_accounts(request)
        listing = Listing(
            request,
            scoped(request, PeriodConsumption.objects.select_related("account"))
            .filter(site=site, period=period)
            .filter(SHOWN[shown][1]),
            columns=COLUMNS,
            default_sort="id",
            export_name=f"period-accounts-{shown}",
        )
        if listing.wants_export:
            return listing.export()  # type: ignore[return-value]
        rows = listing.page()
        holds = holds_of(rows)
        computation = _latest_computation(request, site, period)
        if computation is not None:
            context |= computation_context(request, computation)
        context |= {
            "site": site,
            "period": period,
            "figures": _figures(site, period),
            "listing": listing,
            "shown": shown,
            "views": _views(site, period, shown),
            "held": [(row, [hold_link(hold) for hold in holds.get(row.pk, [])]) for row in rows],
        }
    return render(
        request, "console/verification/periods.html", context, status=200 if form.ok else 400
    )


def _views(site: Site, period: str, shown: str) -> list[tuple[str, str, bool]]:
    """The links that switch the list between held-back, computed, estimated and all."""
    base = reverse("console:periods")
    return [
        (
            f"{base}?{urlencode({'site': str(site.pk), 'period': period, 'show': key})}",
            str(label),
            key == shown,
        )
        for key, (label, _condition) in SHOWN.items()
    ]


def _shown(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Boundary readings for the page: their times as datetimes, which it shows in the
    tenant's zone like every other time (the API gives them as ISO text)."""
    return [
        {**entry, "taken_at": datetime.fromisoformat(entry["taken_at"])}
        if entry.get("taken_at")
        else entry
        for entry in entries
    ]


def _latest_computation(request: HttpRequest, site: Site, period: str) -> Any:
    """The computation the page was sent to watch, else one still running for the period."""
    computations = scoped(request, PeriodComputation.objects.select_related("site")).filter(
        site=site, period=period
    )
    asked = request.GET.get("computation", "")
    if asked.isdigit():
        found = computations.filter(pk=int(asked)).first()
        if found is not None:
            return found
    return computations.filter(state=ComputationState.RUNNING).order_by("-id").first()


def _missing_slot_links(period: PeriodConsumption) -> list[tuple[str, str]]:
    """Links to estimate the opening or closing reading of each of the account's meters, for
    a period held back because one never arrived."""
    links = []
    url = reverse("console:correction-missing-slot")
    for meter in Meter.objects.filter(account_id=period.account_id).order_by("serial_number"):
        for moment, label in (
            (period.starts_at, gettext("Estimate the opening reading of meter %(serial)s")),
            (period.ends_at, gettext("Estimate the closing reading of meter %(serial)s")),
        ):
            local = timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")
            query = urlencode({"meter": str(meter.pk), "taken_at": local})
            links.append((f"{url}?{query}", label % {"serial": meter.serial_number}))
    return links


@page("periods")
def period_detail(request: HttpRequest, period_id: int) -> HttpResponse:
    period = get_object_or_404(
        scoped(request, PeriodConsumption.objects.select_related("account", "site")),
        pk=period_id,
    )
    boundaries = BoundaryReadingsField()
    estimates = []
    if period.status == PeriodStatus.HELD_BACK and can(request, "corrections", "add"):
        estimates = _missing_slot_links(period)
    return render(
        request,
        "console/verification/period.html",
        {
            "period": period,
            "opening": _shown(boundaries.to_representation(period.opening)),
            "closing": _shown(boundaries.to_representation(period.closing)),
            "holds": [hold_link(hold) for hold in holds_of([period])[period.pk]],
            "reasons": [reason for reason in period.hold_reason.split("; ") if reason],
            "estimates": estimates,
        },
    )


urlpatterns: list[URLPattern] = [
    path("periods/", periods, name="periods"),
    path("periods/<int:period_id>/", period_detail, name="period"),
    path(
        "periods/computations/<int:computation_id>/",
        computation_progress,
        name="period-computation",
    ),
    path(
        "periods/computations/<int:computation_id>/resume/",
        computation_resume,
        name="period-computation-resume",
    ),
]
