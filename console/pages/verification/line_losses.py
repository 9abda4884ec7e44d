"""Line loss (台区线损) by transformer area for a site and period, and its trend over the last
periods: each area's loss rate against the tenant's expected rate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.access import page, scoped
from console.filters import PeriodFilter
from console.lists import Column, Listing
from console.pages.verification.common import SiteFilterSet
from verification.models import LineLoss

TREND_PERIODS = 12  # the periods the trend covers, up to the one chosen
TREND_AREAS = 10


class LineLossFilter(SiteFilterSet):
    period = PeriodFilter()
    flagged = django_filters.BooleanFilter(label=_("Above the expected rate"))

    class Meta:
        model = LineLoss
        fields: list[str] = []


def _area(loss: LineLoss) -> str:
    return f"{loss.transformer_area.code} {loss.transformer_area.name}"


def _rate(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def _flag(loss: LineLoss) -> str:
    if loss.loss_rate is None:
        return gettext("Not known")
    return gettext("Above expected") if loss.flagged else gettext("Within expected")


COLUMNS = [
    Column("transformer_area.name", _("Transformer area"), value=lambda loss: _area(loss)),
    Column("site.name", _("Site")),
    Column("period", _("Period")),
    Column("master_consumption", _("Master meter (kWh)"), numeric=True),
    Column("customers_consumption", _("Customers (kWh)"), numeric=True),
    Column("loss", _("Loss (kWh)"), numeric=True),
    Column("loss_rate", _("Loss rate"), value=lambda loss: _rate(loss.loss_rate), numeric=True),
    Column(
        "expected_rate", _("Expected"), value=lambda loss: _rate(loss.expected_rate), numeric=True
    ),
    Column("flagged", _("Judgement"), value=_flag),
    Column("note", _("Note")),
    Column("computed_at", _("Computed at"), sort="id"),
]


def trend_option(losses: list[tuple[str, str, Decimal | None, Decimal]]) -> dict[str, Any] | None:
    """An ECharts line chart of loss rates (in %) per period, one line per area, and the
    expected rate dashed; ``losses`` are (area, period, rate, expected) rows."""
    if not losses:
        return None
    periods = sorted({period for _area, period, _rate, _expected in losses})[-TREND_PERIODS:]
    areas = sorted({area for area, _period, _rate, _expected in losses})[:TREND_AREAS]
    rates = {(area, period): rate for area, period, rate, _expected in losses}
    expected = {period: exp for _area, period, _rate, exp in losses}

    def percent(value: Decimal | None) -> float | None:
        return None if value is None else float(round(value * 100, 2))

    series = [
        {
            "name": area,
            "type": "line",
            "connectNulls": False,
            "data": [percent(rates.get((area, period))) for period in periods],
        }
        for area in areas
    ]
    series.append(
        {
            "name": gettext("Expected rate"),
            "type": "line",
            "lineStyle": {"type": "dashed"},
            "symbol": "none",
            "data": [percent(expected.get(period)) for period in periods],
        }
    )
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll", "bottom": 0},
        "grid": {"left": 48, "right": 16, "top": 40, "bottom": 48},
        "xAxis": {"type": "category", "data": periods},
        "yAxis": {"type": "value", "name": "%"},
        "series": series,
    }


def _trend(losses: Any, listing: Listing) -> list[tuple[str, str, Decimal | None, Decimal]]:
    """The site's loss rates over the last periods up to the one chosen (two queries)."""
    assert listing.filters is not None
    last = listing.filters.form.cleaned_data.get("period") or "2099-12"
    periods = list(
        losses.filter(period__lte=last)
        .order_by("-period")
        .values_list("period", flat=True)
        .distinct()[:TREND_PERIODS]
    )
    rows = losses.filter(period__in=periods).values_list(
        "transformer_area__code", "transformer_area__name", "period", "loss_rate", "expected_rate"
    )
    return [
        (f"{code} {name}", period, rate, expected) for code, name, period, rate, expected in rows
    ]


@page("line_losses")
def line_losses(request: HttpRequest) -> HttpResponseBase:
    losses = scoped(request, LineLoss.objects.select_related("transformer_area", "site"))
    listing = Listing(
        request,
        losses,
        columns=COLUMNS,
        filterset=LineLossFilter,
        export_name="line-losses",
    )
    if listing.wants_export:
        return listing.export()
    option = None
    site = None
    if listing.filters is not None and listing.valid and request.GET:
        site = listing.filters.form.cleaned_data.get("site")
    if site is not None:
        option = trend_option(_trend(losses.filter(site=site), listing))
    return render(
        request,
        "console/verification/line_losses.html",
        {"listing": listing, "option": option, "site": site, "charts": option is not None},
        status=200 if listing.valid else 400,
    )


urlpatterns: list[URLPattern] = [path("line-losses/", line_losses, name="line-losses")]
