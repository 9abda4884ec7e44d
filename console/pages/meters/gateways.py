"""Gateways in the console: the list with each bus's health over the last day, and a gateway's
page: its health over a chosen window (the same figures as the API's ``gateways/health``), a
chart and the list of its polling rounds, its meters read for the last slot, and its events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import Count, F, OuterRef, Subquery
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from console.access import SITES, page, scoped
from console.lists import Column, Listing, listing_response
from console.pages.meters.common import gateway_url, label_of, percent
from metering import reports
from metering.models import Gateway, Meter, MeterEvent, MeterEventKind, MeterStatus, PollRound
from tenancy.context import get_current_tenant

LIST_WINDOW_HOURS = 24
WINDOWS = [(24, _("Last 24 hours")), (24 * 7, _("Last 7 days")), (24 * 30, _("Last 30 days"))]


class GatewayFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)
    is_active = django_filters.BooleanFilter(label=_("Active"))
    name = django_filters.CharFilter(label=_("Name"), lookup_expr="startswith")

    class Meta:
        model = Gateway
        fields: list[str] = []


def _health(attribute: str) -> Any:
    return lambda gateway: getattr(reports.health_of(gateway), attribute)


def _meters_in_service() -> Subquery:
    counted = (
        Meter.objects.filter(gateway=OuterRef("pk"), status=MeterStatus.ACTIVE)
        .order_by()
        .values("gateway")
        .annotate(count=Count("id"))
        .values("count")
    )
    return Subquery(counted[:1])


def _state_text(gateway: Any) -> str:
    return str(HEALTH_STATES[reports.health_of(gateway).state])


HEALTH_STATES = {
    "ok": _("Every meter read"),
    "warn": _("Some meters missed"),
    "bad": _("Many meters missed"),
    "unknown": _("No rounds"),
}

GATEWAY_COLUMNS = [
    Column("name", _("Name"), sort="name", link=gateway_url),
    Column("site.name", _("Site")),
    Column("address", _("Address"), value=lambda g: f"{g.host}:{g.port}"),
    Column("is_active", _("Active")),
    Column("meters_in_service", _("Meters"), numeric=True),
    Column("health", _("Health (24 h)"), value=_state_text),
    Column("rounds", _("Rounds"), value=_health("rounds"), numeric=True),
    Column(
        "success",
        _("Meters read"),
        value=lambda g: percent(reports.health_of(g).success_rate),
        numeric=True,
    ),
    Column(
        "requests",
        _("Requests answered"),
        value=lambda g: percent(reports.health_of(g).request_success_rate),
        numeric=True,
    ),
    Column("mean_ms", _("Mean answer (ms)"), value=_health("mean_response_ms"), numeric=True),
    Column("last_success", _("Last successful read"), value=_health("last_success_at")),
]


@page("gateways")
def gateways(request: HttpRequest) -> HttpResponseBase:
    since = timezone.now() - timedelta(hours=LIST_WINDOW_HOURS)
    queryset = reports.with_health(
        scoped(request, Gateway.objects.select_related("site")), since
    ).annotate(meters_in_service=_meters_in_service())
    listing = Listing(
        request,
        queryset,
        columns=GATEWAY_COLUMNS,
        filterset=GatewayFilter,
        default_sort="name",
        export_name="gateways",
    )
    return listing_response(request, "console/meters/gateways.html", {"listing": listing})


# --- a gateway's page ----------------------------------------------------------------------------


class WindowForm(forms.Form):
    hours = forms.TypedChoiceField(
        label=_("Window"), choices=WINDOWS, coerce=int, required=False, empty_value=None
    )


def _round_ms(poll_round: PollRound) -> float | None:
    answered = poll_round.requests - poll_round.failed_requests
    return round(poll_round.response_ms_total / answered, 1) if answered else None


ROUND_COLUMNS = [
    Column("slot", _("Slot"), sort="slot"),
    Column("started_at", _("Started")),
    Column(
        "duration",
        _("Took (s)"),
        value=lambda r: round((r.finished_at - r.started_at).total_seconds(), 1),
        numeric=True,
    ),
    Column("meters_total", _("Meters"), numeric=True),
    Column("meters_read", _("Read"), numeric=True),
    Column("missed", _("Missed"), value=lambda r: r.meters_total - r.meters_read, numeric=True),
    Column("requests", _("Requests"), numeric=True),
    Column("failed_requests", _("Failed requests"), numeric=True),
    Column("mean_ms", _("Mean answer (ms)"), value=_round_ms, numeric=True),
]


class RoundFilter(django_filters.FilterSet):
    missed = django_filters.BooleanFilter(
        label=_("Only rounds that missed meters"), method="filter_missed"
    )

    class Meta:
        model = PollRound
        fields: list[str] = []

    def filter_missed(self, queryset: Any, name: str, value: bool | None) -> Any:
        if value is None:
            return queryset
        if value:
            return queryset.filter(meters_read__lt=F("meters_total"))
        return queryset.filter(meters_read=F("meters_total"))


def rounds_chart(gateway: Gateway, since: Any) -> dict[str, Any] | None:
    """An ECharts option: the share of meters read and the mean answer time of each round."""
    rows = list(
        PollRound.objects.filter(gateway=gateway, slot__gte=since)
        .order_by("slot")
        .values_list(
            "slot", "meters_total", "meters_read", "requests", "failed_requests",
            "response_ms_total",
        )
    )  # fmt: skip
    if not rows:
        return None
    read, answer = [], []
    for slot, total, done, requests, failed, ms in rows:
        moment = timezone.localtime(slot).strftime("%Y-%m-%d %H:%M")
        read.append([moment, round(100 * done / total, 1) if total else None])
        answered = requests - failed
        answer.append([moment, round(ms / answered, 1) if answered else None])
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 60, "right": 60, "top": 40, "bottom": 30},
        "xAxis": {"type": "time"},
        "yAxis": [
            {"type": "value", "name": "%", "min": 0, "max": 100},
            {"type": "value", "name": "ms", "min": 0},
        ],
        "series": [
            {
                "name": str(_("Meters read (%)")),
                "type": "line",
                "showSymbol": False,
                "data": read,
            },
            {
                "name": str(_("Mean answer (ms)")),
                "type": "line",
                "yAxisIndex": 1,
                "showSymbol": False,
                "data": answer,
            },
        ],
    }


@page("gateways")
def gateway_page(request: HttpRequest, gateway_id: int) -> HttpResponseBase:
    gateway = get_object_or_404(
        scoped(request, Gateway.objects.select_related("site")), pk=gateway_id
    )
    window = WindowForm(request.GET or None)
    hours = (window.cleaned_data["hours"] if window.is_valid() else None) or 24
    since = timezone.now() - timedelta(hours=hours)
    annotated = reports.with_health(Gateway.objects.filter(pk=gateway.pk), since).get()
    health = reports.health_of(annotated)
    slot = reports.last_finished_slot(get_current_tenant())
    completeness = reports.completeness_by_gateway(Gateway.objects.filter(pk=gateway.pk), slot)[0]
    listing = Listing(
        request,
        PollRound.objects.filter(gateway=gateway),
        columns=ROUND_COLUMNS,
        filterset=RoundFilter,
        default_sort="-slot",
        export_name="gateway-rounds",
    )
    if listing.wants_export:
        return listing.export()
    chart = rounds_chart(gateway, since)
    events = [
        (event, label_of(MeterEventKind, event.kind))
        for event in MeterEvent.objects.filter(gateway=gateway)
        .select_related("meter")
        .order_by("-occurred_at")[:10]
    ]
    meters_url = reverse("console:meters")
    return render(
        request,
        "console/meters/gateway.html",
        {
            "gateway": gateway,
            "window": window,
            "hours": hours,
            "health": health,
            "health_label": HEALTH_STATES[health.state],
            "success": percent(health.success_rate),
            "request_success": percent(health.request_success_rate),
            "completeness": completeness,
            "completeness_share": percent(completeness.completeness),
            "slot": slot,
            "listing": listing,
            "chart": chart,
            "charts": chart is not None,
            "events": events,
            "meters_url": f"{meters_url}?gateway={gateway.pk}",
            "unread_url": f"{meters_url}?gateway={gateway.pk}&status=active&last_read=slot",
        },
        status=200 if listing.valid and (not window.is_bound or window.is_valid()) else 400,
    )
