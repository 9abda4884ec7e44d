"""Console pages: inspection (稽查) and staff KPIs.

An inspector draws a random sample of a site's readings and bills of a period (optionally what
one staff member did), re-checks each item on a page that shows the object in its context (the
reading with its meter's neighbouring readings and checks, or the bill with its lines) and
records a finding. Findings go to the person who answers for the item, who sees them under "My
findings" and acknowledges them. The KPI page shows each person's and each site's figures of a
month, with CSV export.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

import django_filters
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from billing.models import Bill, BillLine
from console.access import (
    SITES,
    can,
    page,
    permitted_sites,
    principal_of,
    require,
    scope_for,
    scoped,
    site_choices,
)
from console.filters import SINCE_LABEL, UNTIL_LABEL, LocalDayFilter, PeriodFilter
from console.forms import Field, Form
from console.lists import Column, Listing, display, listing_response
from console.nav import Entry
from inspection import services
from inspection.kpis import Figures, KpiReport, staff_kpis
from inspection.models import (
    MAX_SAMPLE_PART,
    Category,
    Finding,
    FindingState,
    InspectionSample,
    ItemKind,
    ItemState,
    Outcome,
    SampleItem,
    SampleState,
    Severity,
)
from metering.models import Reading
from tenancy.audit import AuditAction, record_audit
from tenancy.models import User
from verification.models import ReadingCheck, Rule, VerificationItem

NAV = [
    Entry("inspect", _("Inspection samples"), "console:inspection-samples", "inspections"),
    Entry("inspect", _("Findings"), "console:inspection-findings", "inspections"),
    Entry("inspect", _("My findings"), "console:inspection-my-findings", "inspections", "own"),
    Entry("inspect", _("Staff KPIs"), "console:inspection-kpis", "kpis"),
]

NEIGHBOURS = 5


def _staff_choices() -> list[tuple[int, str]]:
    return [(user.pk, user.label) for user in User.tenant_staff.order_by("username")]


def _choice_label(choices: Any, value: str) -> str:
    try:
        return str(choices(value).label) if value else ""
    except ValueError:
        return value


# --- samples ----------------------------------------------------------------------------------


class SampleFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)
    period = PeriodFilter()
    state = django_filters.ChoiceFilter(label=_("State"), choices=SampleState.choices)

    class Meta:
        model = InspectionSample
        fields: list[str] = []


def _sample_url(sample: InspectionSample) -> str:
    return reverse("console:inspection-sample", args=[sample.pk])


SAMPLE_COLUMNS = [
    Column("id", _("Sample"), sort="id", link=_sample_url, numeric=True),
    Column("site", _("Site")),
    Column("period", _("Period")),
    Column("staff_label", _("Staff member")),
    Column("progress", _("Checked"), value=lambda s: f"{s.checked} / {s.size}", numeric=True),
    Column("findings", _("Findings"), numeric=True),
    Column("get_state_display", _("State")),
    Column("drawn_by_label", _("Drawn by")),
    Column("drawn_at", _("Drawn at")),
]


@page("inspections")
def samples(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, InspectionSample.objects.select_related("site")),
        columns=SAMPLE_COLUMNS,
        filterset=SampleFilter,
        export_name="inspection-samples",
    )
    return listing_response(
        request,
        "console/inspection/samples.html",
        {"listing": listing, "can_draw": can(request, "inspections", "add")},
    )


class DrawInput(serializers.Serializer):
    """What the draw form sends, as types; the rules are the service's."""

    site = serializers.IntegerField(error_messages={"invalid": _("Choose a site.")})
    period = serializers.CharField(max_length=7)
    staff = serializers.IntegerField(required=False)
    readings = serializers.IntegerField(default=0)
    bills = serializers.IntegerField(default=0)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**53)


def _draw_form(request: HttpRequest, sites: list[tuple[int, str]]) -> Form:
    return Form(
        [
            Field("site", _("Site"), kind="select", required=True, choices=sites, autofocus=True),
            Field("period", _("Period"), kind="month", required=True,
                  help=_("The billing period, YYYY-MM: it closes on the site's reading day.")),
            Field("staff", _("Staff member"), kind="select", choices=_staff_choices(),
                  help=_("Only what this person entered or approved (optional).")),
            Field("readings", _("Number of readings"), kind="number", required=True,
                  help=_("0 to %(max)d.") % {"max": MAX_SAMPLE_PART}),
            Field("bills", _("Number of bills"), kind="number", required=True,
                  help=_("0 to %(max)d.") % {"max": MAX_SAMPLE_PART}),
            Field("seed", _("Seed"), kind="number",
                  help=_("Leave empty for a new random draw; a sample's seed draws it again.")),
        ],
        request.POST if request.method == "POST" else None,
        initial={"readings": 10, "bills": 10},
    )  # fmt: skip


@page("inspections", "add")
def draw(request: HttpRequest) -> HttpResponseBase:
    sites = permitted_sites(request)
    form = _draw_form(request, site_choices(request))
    if request.method == "POST":
        actor = principal_of(request)
        assert actor is not None  # @page
        with form.attempt():
            data = DrawInput(data=form.cleaned())
            data.is_valid(raise_exception=True)
            values = data.validated_data
            site = sites.filter(pk=values["site"]).first()
            if site is None:
                raise ValidationError({"site": [gettext("Choose a site.")]})
            sample = services.draw_sample(
                actor, site, values["period"], readings=values["readings"],
                bills=values["bills"], staff_id=values.get("staff"), seed=values.get("seed"),
            )  # fmt: skip
            messages.success(
                request,
                gettext("Sample drawn: %(count)d items to check.") % {"count": sample.size},
            )
            return redirect(_sample_url(sample))
    return render(
        request,
        "console/inspection/draw.html",
        {"form": form},
        status=400 if form.submitted and not form.ok else 200,
    )


def _item_url(item: SampleItem) -> str:
    return reverse("console:inspection-item", args=[item.pk])


def _item_object(item: SampleItem) -> str:
    if item.kind == ItemKind.BILL and item.bill is not None:
        return gettext("Bill %(number)s") % {"number": item.bill.number}
    reading = item.reading
    if reading is not None:
        return f"{reading.meter.serial_number} · {display(reading.taken_at)}"
    if item.correction is not None:
        return f"{item.correction.meter.serial_number} · {display(item.correction.taken_at)}"
    return "—"


ITEM_COLUMNS = [
    Column("position", _("No."), sort="position", link=_item_url, numeric=True),
    Column("get_kind_display", _("Kind")),
    Column("object", _("Object"), value=_item_object),
    Column("responsible_label", _("Responsible")),
    Column("get_responsibility_display", _("Responsible for")),
    Column("get_state_display", _("State")),
    Column("outcome", _("Outcome"), value=lambda i: _choice_label(Outcome, i.outcome or "")),
    Column("severity", _("Severity"), value=lambda i: _choice_label(Severity, i.severity or "")),
]


def _with_findings(items: QuerySet[SampleItem]) -> QuerySet[SampleItem]:
    finding = Finding.objects.filter(item=OuterRef("pk"))
    return items.select_related("reading__meter", "correction__meter", "bill").annotate(
        outcome=Subquery(finding.values("outcome")[:1]),
        severity=Subquery(finding.values("severity")[:1]),
    )


@page("inspections")
def sample(request: HttpRequest, sample_id: int) -> HttpResponseBase:
    found = get_object_or_404(
        scoped(request, InspectionSample.objects.select_related("site")), pk=sample_id
    )
    listing = Listing(
        request,
        _with_findings(SampleItem.objects.filter(sample=found)),
        columns=ITEM_COLUMNS,
        default_sort="position",
        export_name="inspection-sample-items",
    )
    if listing.wants_export:
        return listing.export()
    return render(
        request,
        "console/inspection/sample.html",
        {"sample": found, "listing": listing, "shortfalls": _shortfalls(found)},
    )


def _shortfalls(sample: InspectionSample) -> list[str]:
    """What the sample holds fewer of than asked for: a draw takes every item there is when
    there are fewer, so the count drawn is the count that was available."""
    drawn = dict(
        SampleItem.objects.filter(sample=sample)
        .order_by()
        .values_list("kind")
        .annotate(count=Count("id"))
    )
    readings, bills = drawn.get(ItemKind.READING, 0), drawn.get(ItemKind.BILL, 0)
    shortfalls = []
    if readings < sample.readings_asked:
        shortfalls.append(
            (
                ngettext(
                    "Only %(available)d reading was available (%(asked)d asked for).",
                    "Only %(available)d readings were available (%(asked)d asked for).",
                    readings,
                )
                if readings
                else _("No reading was available (%(asked)d asked for).")
            )
            % {"available": readings, "asked": sample.readings_asked}
        )
    if bills < sample.bills_asked:
        shortfalls.append(
            (
                ngettext(
                    "Only %(available)d bill was available (%(asked)d asked for).",
                    "Only %(available)d bills were available (%(asked)d asked for).",
                    bills,
                )
                if bills
                else _("No issued bill was available (%(asked)d asked for).")
            )
            % {"available": bills, "asked": sample.bills_asked}
        )
    return shortfalls


# --- re-checking an item ----------------------------------------------------------------------


def _finding_form(request: HttpRequest) -> Form:
    return Form(
        [
            Field("outcome", _("Outcome"), kind="select", required=True, choices=Outcome.choices),
            Field("category", _("Category"), kind="select", choices=Category.choices,
                  help=_("For a finding: what is wrong.")),
            Field("severity", _("Severity"), kind="select", choices=Severity.choices,
                  help=_("For a finding: how serious it is.")),
            Field("note", _("Note"), kind="textarea",
                  help=_("For a finding: what is wrong, so the person responsible can put it "
                         "right. It is sent to them.")),
        ],
        request.POST if request.method == "POST" else None,
    )  # fmt: skip


def _rule_labels(rules: str) -> list[str]:
    labels = []
    for rule in (part for part in rules.split(",") if part):
        try:
            labels.append(str(Rule(rule).label))
        except ValueError:
            labels.append(rule)
    return labels


def _reading_context(item: SampleItem) -> dict[str, Any]:
    """The reading with its meter's readings around it and what the checks said of each."""
    reading = item.reading
    correction = item.correction
    meter = reading.meter if reading is not None else correction.meter  # type: ignore[union-attr]
    moment = reading.taken_at if reading is not None else correction.taken_at  # type: ignore[union-attr]
    of_meter = Reading.objects.filter(meter=meter)
    before = list(of_meter.filter(taken_at__lt=moment).order_by("-taken_at")[:NEIGHBOURS])
    after = list(of_meter.filter(taken_at__gt=moment).order_by("taken_at")[:NEIGHBOURS])
    rows = [*reversed(before), *([reading] if reading is not None else []), *after]
    checks = {
        check.reading_id: check
        for check in ReadingCheck.objects.filter(reading_id__in=[row.pk for row in rows])
    }
    neighbours = [
        {
            "reading": row,
            "current": reading is not None and row.pk == reading.pk,
            "check": checks.get(row.pk),
            "rules": _rule_labels(checks[row.pk].rules) if row.pk in checks else [],
        }
        for row in rows
    ]
    queue_item = (
        VerificationItem.objects.filter(reading=reading).first() if reading is not None else None
    )
    check = checks.get(reading.pk) if reading is not None else None
    return {
        "reading": reading,
        "meter": meter,
        "correction": correction,
        "check": check,
        "check_rules": _rule_labels(check.rules) if check else [],
        "queue_item": queue_item,
        "neighbours": neighbours,
    }


def _bill_context(item: SampleItem) -> dict[str, Any]:
    assert item.bill_id is not None  # a bill item
    bill = Bill.objects.select_related("account", "run").get(pk=item.bill_id)
    return {"bill": bill, "lines": list(BillLine.objects.filter(bill=bill).order_by("position"))}


def _next_pending(item: SampleItem) -> SampleItem | None:
    return (
        SampleItem.objects.filter(
            sample_id=item.sample_id, state=ItemState.PENDING, position__gt=item.position
        )
        .order_by("position")
        .first()
        or SampleItem.objects.filter(sample_id=item.sample_id, state=ItemState.PENDING)
        .order_by("position")
        .first()
    )


@page("inspections")
def item(request: HttpRequest, item_id: int) -> HttpResponseBase:
    found = get_object_or_404(
        scoped(request, SampleItem.objects.select_related("sample", "site")), pk=item_id
    )
    form = _finding_form(request)
    if request.method == "POST":
        if not require(request, "inspections", "record").allows(found.site_id):
            raise Http404
        actor = principal_of(request)
        assert actor is not None  # @page
        with form.attempt():
            values = form.cleaned()
            services.record_finding(
                actor, found, outcome=values.get("outcome", ""),
                category=values.get("category", ""), severity=values.get("severity", ""),
                note=values.get("note", ""),
            )  # fmt: skip
            messages.success(request, gettext("Finding recorded."))
            following = _next_pending(found)
            if following is not None:
                return redirect(_item_url(following))
            return redirect(_sample_url(found.sample))
    finding = Finding.objects.filter(item=found).first()
    context: dict[str, Any] = {
        "item": found,
        "sample": found.sample,
        "form": form,
        "finding": finding,
        "can_record": finding is None
        and found.state == ItemState.PENDING
        and scope_for(request, "inspections", "record").allows(found.site_id),
    }
    if found.kind == ItemKind.BILL:
        context |= _bill_context(found)
    else:
        context |= _reading_context(found)
    return render(
        request,
        "console/inspection/item.html",
        context,
        status=400 if form.submitted and not form.ok else 200,
    )


# --- findings ---------------------------------------------------------------------------------


class FindingFilter(django_filters.FilterSet):
    responsible_id = django_filters.ChoiceFilter(label=_("Responsible"), choices=_staff_choices)
    state = django_filters.ChoiceFilter(label=_("State"), choices=FindingState.choices)
    outcome = django_filters.ChoiceFilter(label=_("Outcome"), choices=Outcome.choices)
    severity = django_filters.ChoiceFilter(label=_("Severity"), choices=Severity.choices)
    category = django_filters.ChoiceFilter(label=_("Category"), choices=Category.choices)
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)
    since = LocalDayFilter(field_name="recorded_at", label=SINCE_LABEL)
    until = LocalDayFilter(field_name="recorded_at", label=UNTIL_LABEL, upto=True)

    class Meta:
        model = Finding
        fields: list[str] = []


def _finding_item_url(finding: Finding) -> str:
    return reverse("console:inspection-item", args=[finding.item_id])


FINDING_COLUMNS = [
    Column("recorded_at", _("Recorded at"), sort="recorded_at", link=_finding_item_url),
    Column("site", _("Site")),
    Column("get_kind_display", _("Kind")),
    Column("get_outcome_display", _("Outcome")),
    Column("get_category_display", _("Category")),
    Column("get_severity_display", _("Severity")),
    Column("responsible_label", _("Responsible")),
    Column("get_responsibility_display", _("Responsible for")),
    Column("get_state_display", _("State")),
    Column("recorded_by_label", _("Inspector")),
]


@page("inspections")
def findings(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, Finding.objects.select_related("site")),
        columns=FINDING_COLUMNS,
        filterset=FindingFilter,
        export_name="inspection-findings",
    )
    return listing_response(request, "console/inspection/findings.html", {"listing": listing})


class MyFindingFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        label=_("State"), choices=[(FindingState.OPEN, FindingState.OPEN.label),
                                   (FindingState.ACKNOWLEDGED, FindingState.ACKNOWLEDGED.label)],
    )  # fmt: skip
    severity = django_filters.ChoiceFilter(label=_("Severity"), choices=Severity.choices)

    class Meta:
        model = Finding
        fields: list[str] = []


def _my_finding_url(finding: Finding) -> str:
    return reverse("console:inspection-my-finding", args=[finding.pk])


MY_FINDING_COLUMNS = [
    Column("recorded_at", _("Recorded at"), sort="recorded_at", link=_my_finding_url),
    Column("site", _("Site")),
    Column("get_kind_display", _("Kind")),
    Column("get_category_display", _("Category")),
    Column("get_severity_display", _("Severity")),
    Column("get_responsibility_display", _("You")),
    Column("get_state_display", _("State")),
    Column("recorded_by_label", _("Inspector")),
]


def _mine(request: HttpRequest) -> QuerySet[Finding]:
    """The findings addressed to the signed-in person (ok outcomes are not addressed)."""
    return scoped(
        request,
        Finding.objects.filter(responsible_id=request.user.pk, outcome=Outcome.FINDING),
    )


@page("inspections", "own")
def my_findings(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        _mine(request).select_related("site"),
        columns=MY_FINDING_COLUMNS,
        filterset=MyFindingFilter,
    )
    return render(
        request,
        "console/inspection/my_findings.html",
        {"listing": listing},
        status=200 if listing.valid else 400,
    )


@page("inspections", "own")
def my_finding(request: HttpRequest, finding_id: int) -> HttpResponseBase:
    finding = get_object_or_404(
        _mine(request).select_related(
            "site", "item__reading__meter", "item__correction__meter", "item__bill"
        ),
        pk=finding_id,
    )
    form = Form(
        [Field("response", _("Your response"), kind="textarea",
               help=_("What you did about it (optional)."))],
        request.POST if request.method == "POST" else None,
    )  # fmt: skip
    if request.method == "POST":
        require(request, "inspections", "acknowledge")
        actor = principal_of(request)
        assert actor is not None  # @page
        with form.attempt():
            services.acknowledge_finding(actor, finding, form.cleaned().get("response", ""))
            messages.success(request, gettext("Finding acknowledged."))
            return redirect(reverse("console:inspection-my-findings"))
    return render(
        request,
        "console/inspection/my_finding.html",
        {"finding": finding, "object": _item_object(finding.item), "form": form},
        status=400 if form.submitted and not form.ok else 200,
    )


# --- KPIs -------------------------------------------------------------------------------------


MONTH = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    found = MONTH.fullmatch(month)
    if found is None:
        raise ValidationError({"month": [gettext("A month: YYYY-MM.")]})
    year, number = int(found[1]), int(found[2])
    zone = timezone.get_current_timezone()
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start, end


PEOPLE_HEADINGS = [
    _("Person"), _("Completeness %"), _("Readings entered"), _("Queue items resolved"),
    _("Turnaround median (h)"), _("Turnaround 90th percentile (h)"),
    _("Approvals later found wrong"), _("Findings: minor"), _("Findings: major"),
    _("Findings: critical"), _("Items checked"),
]  # fmt: skip
SITE_HEADINGS = [_("Site"), *PEOPLE_HEADINGS[1:6], *PEOPLE_HEADINGS[7:]]


def _people_cells(row: Figures) -> list[Any]:
    return [
        row.label, row.completeness_percent, row.entered, row.resolved, row.median_hours,
        row.p90_hours, row.found_wrong, row.findings["minor"], row.findings["major"],
        row.findings["critical"], row.items_checked,
    ]  # fmt: skip


def _site_cells(row: Figures) -> list[Any]:
    cells = _people_cells(row)
    return [*cells[:6], *cells[7:]]


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _kpi_csv(request: HttpRequest, report: KpiReport, table: str, filters: dict) -> HttpResponse:
    principal = principal_of(request)
    assert principal is not None  # @page
    rows = report.people if table == "people" else report.sites
    record_audit(
        principal,
        AuditAction.EXPORT_DOWNLOADED,
        object_type=f"staff-kpis-{table}",
        after={"filters": filters, "rows": len(rows), "masked": False},
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    headings, cells = (
        (PEOPLE_HEADINGS, _people_cells) if table == "people" else (SITE_HEADINGS, _site_cells)
    )
    writer.writerow([str(heading) for heading in headings])
    for row in rows:
        writer.writerow([_csv_cell(cell) for cell in cells(row)])
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="staff-kpis-{table}-{stamp}.csv"'
    return response


@page("kpis")
def kpis(request: HttpRequest) -> HttpResponseBase:
    sites = permitted_sites(request)
    this_month = timezone.localdate().strftime("%Y-%m")
    form = Form(
        [
            Field("site", _("Site"), kind="select", choices=site_choices(request)),
            Field("month", _("Month"), kind="month", required=True),
        ],
        {"month": this_month, **request.GET.dict()} if request.GET else None,
        initial={"month": this_month},
    )
    report = None
    with form.attempt():
        since, until = _month_bounds(str(form.value("month")))
        site_ids = request.site_scope.site_ids_or_none  # type: ignore[attr-defined]
        chosen = form.value("site")
        if chosen:
            site = sites.filter(pk=chosen if str(chosen).isdigit() else 0).first()
            if site is None:
                raise ValidationError({"site": [gettext("Choose a site.")]})
            site_ids = frozenset({site.pk})
        report = staff_kpis(site_ids, since, until)
    export = request.GET.get("export")
    if report is not None and export in ("people", "sites"):
        filters = {k: v for k, v in request.GET.items() if k != "export"}
        return _kpi_csv(request, report, export, filters)
    query = request.GET.copy()
    query.pop("export", None)
    return render(
        request,
        "console/inspection/kpis.html",
        {
            "form": form,
            "report": report,
            "people_headings": PEOPLE_HEADINGS,
            "site_headings": SITE_HEADINGS,
            "people_rows": [_people_cells(row) for row in report.people] if report else [],
            "site_rows": [_site_cells(row) for row in report.sites] if report else [],
            "query": query.urlencode(),
        },
        status=200 if form.ok else 400,
    )


urlpatterns: list[URLPattern] = [
    path("inspection/samples/", samples, name="inspection-samples"),
    path("inspection/samples/draw/", draw, name="inspection-draw"),
    path("inspection/samples/<int:sample_id>/", sample, name="inspection-sample"),
    path("inspection/items/<int:item_id>/", item, name="inspection-item"),
    path("inspection/findings/", findings, name="inspection-findings"),
    path("inspection/my-findings/", my_findings, name="inspection-my-findings"),
    path("inspection/my-findings/<int:finding_id>/", my_finding, name="inspection-my-finding"),
    path("inspection/kpis/", kpis, name="inspection-kpis"),
]
