"""The meter registry in the console: the meters list (filters, serial search, "not read since",
CSV export), a meter's page (facts, relay, the registers' chart, recent readings with their
checks, events and commands) and a meter's readings list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.access import SITES, can, page, scoped
from console.filters import SINCE_LABEL, UNTIL_LABEL, DayInput, LocalDayFilter, local_midnight
from console.lists import Column, Listing, listing_response
from console.pages.meters.common import GATEWAYS, gateway_url, label_of, meter_url
from metering import reports
from metering.meter_profiles import TOU_REGISTERS, ProfileError, all_profiles, get_profile
from metering.models import (
    OPEN_COMMAND_STATES,
    CommandKind,
    CommandState,
    Meter,
    MeterCommand,
    MeterEvent,
    MeterEventKind,
    MeterStatus,
    Reading,
    ReadingSource,
    RelayState,
)
from tenancy.context import get_current_tenant
from tenancy.models import EARLIEST_CALENDAR_DAY, LATEST_CALENDAR_DAY
from verification.models import CheckStatus, ReadingCheck, Rule

# --- the meters list -----------------------------------------------------------------------------

LAST_READ_CHOICES = [
    ("slot", _("Not read for the last slot")),
    ("day", _("Not read for a day")),
    ("week", _("Not read for a week")),
    ("never", _("Never read")),
]


def _profile_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(all_profiles())]


class SearchInput(forms.TextInput):
    input_type = "search"


class MeterFilter(django_filters.FilterSet):
    serial = django_filters.CharFilter(
        field_name="serial_number",
        lookup_expr="startswith",
        label=_("Serial number"),
        widget=SearchInput(attrs={"size": 14}),
    )
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)
    gateway = django_filters.ModelChoiceFilter(label=_("Gateway"), queryset=GATEWAYS)
    status = django_filters.ChoiceFilter(label=_("Status"), choices=MeterStatus.choices)
    profile = django_filters.ChoiceFilter(label=_("Model"), choices=_profile_choices)
    last_read = django_filters.ChoiceFilter(
        label=_("Last read"), choices=LAST_READ_CHOICES, method="filter_last_read"
    )

    class Meta:
        model = Meter
        fields: list[str] = []

    def filter_last_read(self, queryset: QuerySet[Meter], name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        if value == "slot":
            slot = reports.last_finished_slot(get_current_tenant())
            return reports.not_read_for_slot(queryset, slot)
        return reports.not_read_since(queryset, not_read_cutoff(value))


def not_read_cutoff(choice: str) -> datetime | None:
    """The moment a meter must have been read since to be left out by ``last_read``."""
    now = timezone.now()
    if choice == "day":
        return now - timedelta(days=1)
    if choice == "week":
        return now - timedelta(days=7)
    return None


def _last_read() -> Subquery:
    latest = Reading.objects.filter(meter=OuterRef("pk")).order_by("-taken_at")
    return Subquery(latest.values("taken_at")[:1])


METER_COLUMNS = [
    Column("serial_number", _("Serial number"), sort="serial_number", link=meter_url),
    Column("profile", _("Model")),
    Column("site.name", _("Site")),
    Column("gateway.name", _("Gateway"), link=lambda m: gateway_url(m.gateway)),
    Column("unit_id", _("Unit id"), numeric=True),
    Column("account.number", _("Account")),
    Column("get_status_display", _("Status")),
    Column("last_read_at", _("Last read")),
    Column("installed_on", _("Installed on")),
]


@page("meters")
def meters(request: HttpRequest) -> HttpResponseBase:
    queryset = scoped(
        request,
        Meter.objects.select_related("site", "gateway", "account").annotate(
            last_read_at=_last_read()
        ),
    )
    listing = Listing(
        request,
        queryset,
        columns=METER_COLUMNS,
        filterset=MeterFilter,
        default_sort="serial_number",
        export_name="meters",
    )
    return listing_response(
        request,
        "console/meters/meters.html",
        {
            "listing": listing,
            "may_import": can(request, "meters", "import"),
        },
    )


# --- a meter's page ------------------------------------------------------------------------------

RECENT = 20
CHART_DAYS = 30
CHART_MAX_DAYS = 92
CHART_POINTS = 800
SERIES_LABELS = {
    "total": _("Total"),
    "tou_spike": _("Spike (尖)"),
    "tou_peak": _("Peak (峰)"),
    "tou_flat": _("Flat (平)"),
    "tou_valley": _("Valley (谷)"),
}


class RangeForm(forms.Form):
    since = forms.DateField(
        label=SINCE_LABEL,
        required=False,
        widget=DayInput,
        validators=[
            MinValueValidator(EARLIEST_CALENDAR_DAY),
            MaxValueValidator(LATEST_CALENDAR_DAY),
        ],
    )
    until = forms.DateField(
        label=UNTIL_LABEL,
        required=False,
        widget=DayInput,
        validators=[
            MinValueValidator(EARLIEST_CALENDAR_DAY),
            MaxValueValidator(LATEST_CALENDAR_DAY),
        ],
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        until: date = data.get("until") or timezone.localdate()
        since: date = data.get("since") or until - timedelta(days=CHART_DAYS)
        if since > until:
            self.add_error("since", _("The first day is after the last."))
        elif (until - since).days > CHART_MAX_DAYS:
            self.add_error(
                "since",
                _("Choose at most %(days)s days at a time.") % {"days": CHART_MAX_DAYS},
            )
        data["since"], data["until"] = since, until
        return data


def registers_chart(meter: Meter, since: date, until: date) -> dict[str, Any] | None:
    """An ECharts option: the total and the TOU registers over the days, in the tenant's zone,
    thinned to at most ``CHART_POINTS`` points a line (a 15-minute meter reads 96 times a day)."""
    names = ["total", *TOU_REGISTERS]
    rows = list(
        Reading.objects.filter(
            meter=meter,
            taken_at__gte=local_midnight(since),
            taken_at__lt=local_midnight(until + timedelta(days=1)),
        )
        .order_by("taken_at")
        .values_list("taken_at", *names)
    )
    if not rows:
        return None
    step = max(1, -(-len(rows) // CHART_POINTS))
    picked = rows[::step]
    if picked[-1] is not rows[-1]:
        picked.append(rows[-1])
    series = []
    for position, name in enumerate(names, start=1):
        points = [
            [timezone.localtime(row[0]).strftime("%Y-%m-%d %H:%M"), float(row[position])]
            for row in picked
            if row[position] is not None
        ]
        if points:
            series.append(
                {
                    "name": str(SERIES_LABELS[name]),
                    "type": "line",
                    "showSymbol": False,
                    "data": points,
                }
            )
    unit = _profile_unit(meter.profile)
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 70, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True, "name": unit},
        "series": series,
    }


def _profile_unit(name: str) -> str:
    try:
        return get_profile(name).unit
    except ProfileError:
        return ""


@dataclass(frozen=True)
class RelayView:
    state: str  # closed, tripped or "" (not known)
    label: str
    since: datetime | None
    source: str


def relay_of(meter: Meter) -> RelayView | None:
    """The relay as last known: from the newest reading that reports it or the newest
    confirmed relay command, whichever is later. ``None`` for a meter model with no relay."""
    try:
        profile = get_profile(meter.profile)
    except ProfileError:
        return None
    if profile.relay is None:
        return None
    reading = (
        Reading.objects.filter(meter=meter)
        .exclude(relay_state="")
        .order_by("-taken_at")
        .values_list("relay_state", "read_at")
        .first()
    )
    command = (
        MeterCommand.objects.filter(
            meter=meter,
            state=CommandState.CONFIRMED,
            kind__in=[CommandKind.RELAY_TRIP, CommandKind.RELAY_CLOSE],
        )
        .order_by("-completed_at")
        .values_list("kind", "completed_at")
        .first()
    )
    known: list[tuple[str, datetime, str]] = []
    if reading is not None:
        known.append((reading[0], reading[1], str(_("last reading"))))
    if command is not None and command[1] is not None:
        commanded = "tripped" if command[0] == CommandKind.RELAY_TRIP else "closed"
        known.append((commanded, command[1], str(_("confirmed command"))))
    if not known:
        return RelayView("", str(_("Not known yet")), None, "")
    state, since, source = max(known, key=lambda item: item[1])
    return RelayView(state, label_of(RelayState, state), since, source)


def _with_checks(readings: QuerySet[Reading]) -> QuerySet[Reading]:
    """Readings with their check's status and rules (one query; a reading not yet checked has
    neither)."""
    check = ReadingCheck.objects.filter(reading=OuterRef("pk"))
    return readings.annotate(
        check_status=Subquery(check.values("status")[:1]),
        check_rules=Subquery(check.values("rules")[:1]),
    )


def check_text(reading: Any) -> str:
    """A reading's check as staff read it: its status and the rules that fired."""
    if reading.check_status is None:
        return str(_("Not checked yet"))
    text = label_of(CheckStatus, reading.check_status)
    rules = [label_of(Rule, rule) for rule in (reading.check_rules or "").split(",") if rule]
    return f"{text}: {'; '.join(rules)}" if rules else text


CHECK_BADGES: dict[str, str] = {
    CheckStatus.VALID: "ok",
    CheckStatus.APPROVED: "ok",
    CheckStatus.SUSPECT: "bad",
    CheckStatus.REPLACED: "warn",
}


def check_badge(status: str | None) -> str:
    return CHECK_BADGES.get(status or "", "")


@dataclass(frozen=True)
class ReadingRowView:
    reading: Reading
    check: str
    badge: str


@page("meters")
def meter_page(request: HttpRequest, meter_id: int) -> HttpResponse:
    meter = get_object_or_404(
        scoped(request, Meter.objects.select_related("site", "gateway", "account", "premise")),
        pk=meter_id,
    )
    range_form = RangeForm(request.GET or None)
    valid = range_form.is_valid() if request.GET else True
    if request.GET and valid:
        since, until = range_form.cleaned_data["since"], range_form.cleaned_data["until"]
    else:
        until = timezone.localdate()
        since = until - timedelta(days=CHART_DAYS)
    chart = registers_chart(meter, since, until) if valid else None
    readings = [
        ReadingRowView(r, check_text(r), check_badge(getattr(r, "check_status", None)))
        for r in _with_checks(Reading.objects.filter(meter=meter)).order_by("-taken_at")[:RECENT]
    ]
    events = list(MeterEvent.objects.filter(meter=meter).order_by("-occurred_at")[:10])
    commands = list(MeterCommand.objects.filter(meter=meter).order_by("-id")[:10])
    open_command = next((c for c in commands if c.state in OPEN_COMMAND_STATES), None)
    profile = _profile_or_none(meter.profile)
    commandable = meter.status == MeterStatus.ACTIVE and meter.gateway_id is not None
    return render(
        request,
        "console/meters/meter.html",
        {
            "meter": meter,
            "profile": profile,
            "relay": relay_of(meter),
            "range_form": range_form,
            "since": since,
            "until": until,
            "chart": chart,
            "charts": chart is not None,
            "readings": readings,
            "events": [(event, label_of(MeterEventKind, event.kind)) for event in events],
            "commands": commands,
            "open_command": open_command,
            "may_enter_reading": can(request, "readings", "add")
            and meter.status != MeterStatus.REMOVED,
            "may_command": can(request, "meter_commands", "add") and commandable,
            "has_relay": profile is not None and profile.relay is not None,
            "setpoints": profile.setpoints if profile is not None else (),
        },
        status=200 if valid else 400,
    )


def _profile_or_none(name: str) -> Any:
    try:
        return get_profile(name)
    except ProfileError:
        return None


# --- a meter's readings --------------------------------------------------------------------------


class ReadingFilter(django_filters.FilterSet):
    since = LocalDayFilter(field_name="taken_at", label=SINCE_LABEL)
    until = LocalDayFilter(field_name="taken_at", label=UNTIL_LABEL, upto=True)
    source = django_filters.ChoiceFilter(label=_("Source"), choices=ReadingSource.choices)
    check = django_filters.ChoiceFilter(
        label=_("Check"),
        choices=[*CheckStatus.choices, ("unchecked", _("Not checked yet"))],
        method="filter_check",
    )

    class Meta:
        model = Reading
        fields: list[str] = []

    def filter_check(self, queryset: QuerySet[Reading], name: str, value: str) -> QuerySet:
        if value == "unchecked":
            return queryset.filter(**{"check_status__isnull": True})
        return queryset.filter(**{"check_status": value}) if value else queryset


def _decimal(name: str, label: Any) -> Column:
    return Column(name, label, numeric=True)


READING_COLUMNS = [
    Column("taken_at", _("Slot"), sort="taken_at"),
    Column("read_at", _("Read at")),
    Column("get_source_display", _("Source")),
    _decimal("total", _("Total")),
    _decimal("tou_spike", SERIES_LABELS["tou_spike"]),
    _decimal("tou_peak", SERIES_LABELS["tou_peak"]),
    _decimal("tou_flat", SERIES_LABELS["tou_flat"]),
    _decimal("tou_valley", SERIES_LABELS["tou_valley"]),
    Column("get_relay_state_display", _("Relay")),
    Column("check", _("Check"), value=check_text),
]


@page("readings")
def meter_readings(request: HttpRequest, meter_id: int) -> HttpResponseBase:
    meter = get_object_or_404(scoped(request, Meter.objects.select_related("site")), pk=meter_id)
    listing = Listing(
        request,
        _with_checks(Reading.objects.filter(meter=meter)),
        columns=READING_COLUMNS,
        filterset=ReadingFilter,
        default_sort="-taken_at",
        export_name="meter-readings",
    )
    return listing_response(
        request, "console/meters/readings.html", {"meter": meter, "listing": listing}
    )


def readings_url(meter: Meter) -> str:
    return reverse("console:meter-readings", args=[meter.pk])
