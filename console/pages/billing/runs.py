"""Console pages: bill runs. Start a run for a site and period (or a supplementary run for the
accounts it held back), watch it price (progress polled by htmx), review what it held back and
flagged, and approve it as a second person: the service refuses whoever started it, and the
page says so before they try. A run whose worker died (no progress for ``BARS_STALL_MINUTES``)
is shown stalled, polled slowly, and may be started again by those who may start runs."""

from __future__ import annotations

import csv
from typing import Any

import django_filters
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.api import StartRunSerializer
from billing.models import BillCheck, BillRun, FlaggedBill, RunState
from billing.runs import services as run_services
from console.access import SITES, can, page, principal_of, scoped, site_choices
from console.filters import PeriodFilter
from console.forms import Field, Form, api_request
from console.lists import Column, Listing
from console.pages.billing.common import actor
from tenancy.audit import AuditAction, record_audit
from tenancy.progress import idle_minutes
from verification.periods import PeriodError, ensure_ended

ACTIVE = (RunState.RUNNING, RunState.ISSUING)
HELD_BACK_SHOWN = 200
FLAGGED_SHOWN = 50


class RunFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(label=gettext_lazy("Site"), queryset=SITES)
    period = PeriodFilter()
    state = django_filters.ChoiceFilter(label=gettext_lazy("State"), choices=RunState.choices)
    supplementary = django_filters.BooleanFilter(label=gettext_lazy("Supplementary"))

    class Meta:
        model = BillRun
        fields: list[str] = []


def _run_url(run: BillRun) -> str:
    return reverse("console:bill-run", args=[run.pk])


def _state_text(run: BillRun) -> str:
    """The run's state, and whether it stalled (its worker most likely died)."""
    state = str(run.get_state_display())
    if run.stalled:
        return _("%(state)s, no progress (stalled)") % {"state": state}
    return state


RUN_COLUMNS = [
    Column("id", gettext_lazy("Run"), sort="id", link=_run_url),
    Column("site.name", gettext_lazy("Site")),
    Column("period", gettext_lazy("Period")),
    Column("supplementary", gettext_lazy("Supplementary")),
    Column("state", gettext_lazy("State"), value=lambda run: _state_text(run)),
    Column("progress", gettext_lazy("Accounts priced"), value=lambda r: f"{r.done} / {r.total}"),
    Column("bills", gettext_lazy("Bills"), numeric=True),
    Column("flagged", gettext_lazy("Flagged"), numeric=True),
    Column("held", gettext_lazy("Held back"), value=lambda r: len(r.held_back), numeric=True),
    Column("amount", gettext_lazy("Amount (yuan)"), numeric=True),
    Column("started_by_label", gettext_lazy("Started by")),
    Column("approved_by_label", gettext_lazy("Approved by")),
    Column("started_at", gettext_lazy("Started")),
]


@page("bill_runs")
def bill_runs(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, BillRun.objects.select_related("site")),
        columns=RUN_COLUMNS,
        filterset=RunFilter,
        export_name="bill-runs",
    )
    if listing.wants_export:
        return listing.export()
    return render(
        request,
        "console/billing/runs.html",
        {"listing": listing, "may_start": can(request, "bill_runs", "add")},
        status=200 if listing.valid else 400,
    )


@page("bill_runs", "add")
def bill_run_new(request: HttpRequest) -> HttpResponse:
    """Start the run of a site and period (or a supplementary run after the issued one): the
    API's serializer checks the body, the service opens the run and prices it as tasks."""
    form = Form(
        [
            Field(
                "site",
                gettext_lazy("Site"),
                kind="select",
                required=True,
                choices=site_choices(request),
            ),
            Field(
                "period",
                gettext_lazy("Period (YYYY-MM)"),
                required=True,
                help=gettext_lazy("The billing period that closed on the site's reading day."),
            ),
            Field(
                "supplementary",
                gettext_lazy(
                    "Supplementary run: bill the accounts the issued "
                    "run of this period held back or that were added "
                    "since"
                ),
                kind="checkbox",
            ),
        ],
        request.POST if request.method == "POST" else None,
        initial={key: request.GET.get(key, "") for key in ("site", "period", "supplementary")},
    )
    if request.method == "POST":
        run = None
        with form.attempt():
            body = StartRunSerializer(
                data=form.cleaned(), context={"request": api_request(request)}
            )
            body.is_valid(raise_exception=True)
            site, period = body.validated_data["site"], body.validated_data["period"]
            ensure_ended(site, period)
            try:
                run = run_services.start_bill_run(
                    actor(request),
                    site,
                    period,
                    supplementary=body.validated_data["supplementary"],
                )
            except PeriodError as exc:
                raise ValidationError({"period": [str(exc)]}) from exc
        if run is not None and form.ok:
            messages.success(request, _("Bill run started."))
            return redirect("console:bill-run", run_id=run.pk)
    return render(
        request, "console/billing/run_new.html", {"form": form}, status=200 if form.ok else 400
    )


def _run_context(request: HttpRequest, run: BillRun) -> dict[str, Any]:
    """What the run's live panel shows: progress, figures, what it held back and flagged, and
    whether this person may approve it."""
    principal = principal_of(request)
    started_it = principal is not None and run_services.same_actor(
        principal, run.started_by_kind, run.started_by_id
    )
    held_back = sorted(run.held_back.items())
    flagged = [
        {"flag": flag, "check": _check_label(flag.first_check)}
        for flag in FlaggedBill.objects.filter(bill__run=run)
        .select_related("bill")
        .order_by("state", "-id")[:FLAGGED_SHOWN]
    ]
    if run.state == RunState.ISSUING:
        done, total = run.issued, max(run.bills - run.flagged, 0)
    else:
        done, total = run.done, run.total
    may_approve = can(request, "bill_runs", "approve") and run.state == RunState.DRAFTED
    stalled = run.stalled
    return {
        "run": run,
        "active": run.state in ACTIVE,
        "stalled": stalled,
        "idle_minutes": idle_minutes(run.progressed_at),
        "may_resume": stalled and can(request, "bill_runs", "add"),
        "progress_done": done,
        "progress_total": total,
        "held_back": held_back[:HELD_BACK_SHOWN],
        "held_back_count": len(held_back),
        "held_back_more": max(len(held_back) - HELD_BACK_SHOWN, 0),
        "flagged": flagged,
        "may_approve": may_approve and not started_it,
        "approve_refused_to_starter": may_approve and started_it,
        "may_start_supplementary": (
            can(request, "bill_runs", "add")
            and run.state == RunState.ISSUED
            and not run.supplementary
            and bool(run.held_back)
        ),
    }


def _check_label(check: str) -> str:
    try:
        return str(BillCheck(check).label)
    except ValueError:
        return check


def _scoped_run(request: HttpRequest, run_id: int) -> BillRun:
    return get_object_or_404(scoped(request, BillRun.objects.select_related("site")), pk=run_id)


@page("bill_runs")
def bill_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _scoped_run(request, run_id)
    return render(request, "console/billing/run.html", _run_context(request, run))


@page("bill_runs")
def bill_run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The run's live panel alone, polled every 2 s while it prices or issues (every 30 s once
    it has stalled); once it is done the panel comes back without the trigger, so the polling
    stops."""
    run = _scoped_run(request, run_id)
    return render(request, "console/billing/_run_panel.html", _run_context(request, run))


@page("bill_runs", "add")
def bill_run_resume(request: HttpRequest, run_id: int) -> HttpResponse:
    """Start a stalled run again (POST), for those who may start runs: the service queues its
    stage's tasks again, which resume where the run stopped."""
    run = _scoped_run(request, run_id)
    if request.method != "POST":
        return redirect("console:bill-run", run_id=run.pk)
    form = Form([], request.POST)
    with form.attempt():
        run_services.resume_bill_run(actor(request), run.pk)
    if form.ok:
        messages.success(request, _("Bill run started again; it resumes where it stopped."))
        return redirect("console:bill-run", run_id=run.pk)
    run.refresh_from_db()
    context = _run_context(request, run) | {"resume_errors": form.non_field_errors}
    return render(request, "console/billing/run.html", context, status=400)


@page("bill_runs")
def bill_run_held_back(request: HttpRequest, run_id: int) -> HttpResponse:
    """Every account the run held back, with its reason, as CSV (audited like list exports)."""
    run = _scoped_run(request, run_id)
    principal = actor(request)
    record_audit(
        principal,
        AuditAction.EXPORT_DOWNLOADED,
        object_type="bill-run-held-back",
        after={"run": run.pk, "rows": len(run.held_back)},
        site_id=run.site_id,
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'attachment; filename="bill-run-{run.pk}-held-back-{stamp}.csv"'
    )
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([_("Account number"), _("Reason")])
    for number, reason in sorted(run.held_back.items()):
        writer.writerow([_spreadsheet_safe(number), _spreadsheet_safe(reason)])
    return response


def _spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula (= + - @ first) is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@page("bill_runs", "approve")
def bill_run_approve(request: HttpRequest, run_id: int) -> HttpResponse:
    """The confirmation of a run's approval: what issuing does, then the service (which refuses
    whoever started the run) approves it and issues the bills as tasks."""
    run = _scoped_run(request, run_id)
    principal = actor(request)
    started_it = run_services.same_actor(principal, run.started_by_kind, run.started_by_id)
    form = Form([], request.POST if request.method == "POST" else None)
    if request.method == "POST":
        with form.attempt():
            run_services.start_approval(principal, run)
        if form.ok:
            messages.success(request, _("Bill run approved; its bills are being issued."))
            return redirect("console:bill-run", run_id=run.pk)
    elif run.state != RunState.DRAFTED:
        form.add_errors({"__all__": [_("Only a drafted run waiting for approval is approved.")]})
    elif started_it:
        form.add_errors({"__all__": [_("You started this run: a second person approves it.")]})
    to_issue = max(run.bills - run.flagged, 0)
    return render(
        request,
        "console/billing/approve.html",
        {
            "title": _("Approve bill run %(id)s (%(site)s, %(period)s)")
            % {"id": run.pk, "site": run.site.name, "period": run.period},
            "run": run,
            "consequences": [
                _(
                    "Bills issued now: %(count)s, each with its due date and posted to its "
                    "customer's account in the ledger; the run's drafts come to %(amount)s yuan "
                    "(flagged ones included)."
                )
                % {"count": to_issue, "amount": f"{run.amount:,}"},
                _(
                    "Flagged bills that stay drafts until a verifier approves or voids each: "
                    "%(count)s."
                )
                % {"count": run.flagged},
                _(
                    "Held-back accounts not billed (a supplementary run bills them once their "
                    "consumption is verified): %(count)s."
                )
                % {"count": len(run.held_back)},
                _(
                    "Issued bills are never edited: a mistake is corrected by a credit note and a "
                    "re-bill."
                ),
            ]
            + (
                []
                if started_it  # told instead that a second person approves
                else [
                    _("Started by %(who)s; you approve as the second person.")
                    % {"who": run.started_by_label}
                ]
            ),
            "form": form,
            "may_confirm": run.state == RunState.DRAFTED and not started_it,
            "action_url": reverse("console:bill-run-approve", args=[run.pk]),
            "cancel_url": reverse("console:bill-run", args=[run.pk]),
            "confirm_label": _("Approve and issue"),
        },
        status=400 if request.method == "POST" else 200,
    )
