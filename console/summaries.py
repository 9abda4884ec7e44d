"""The dashboards' figures per site, computed by the job ``console.refresh_dashboards`` (every
five minutes, and for a tenant whose summaries are missing when a dashboard is first opened).

A dashboard reads the summaries of the sites in the person's grants and adds them up, so it
costs one query however many meters, readings and bills there are; it shows how old the
figures are. What changes by the second (a command's progress, the queue itself) is read live
on its own page.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from billing.models import FlaggedBill, ReviewState
from billing.runs.services import billed_account_count
from console.models import DashboardSummary
from metering.models import Gateway, Meter, MeterStatus, PollRound, Reading
from metering.slots import current_slot
from tenancy.context import get_current_tenant
from tenancy.models import Site
from verification.models import (
    ItemState,
    LineLoss,
    PeriodConsumption,
    PeriodStatus,
    VerificationItem,
)

NOT_READ_LISTED = 20
TREND_PERIODS = 12
LINE_LOSS_PERIODS = 6
HEALTH_WINDOW = timedelta(hours=24)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _reading(site: Site, slot: Any) -> dict[str, Any]:
    active = Meter.objects.filter(site=site, status=MeterStatus.ACTIVE)
    read_ids = Reading.objects.filter(meter__site=site, taken_at=slot).values("meter_id")
    not_read = active.exclude(pk__in=read_ids)
    since = timezone.now() - HEALTH_WINDOW
    rounds = PollRound.objects.filter(site=site, slot__gte=since)
    by_gateway: dict[int, dict[str, Any]] = {
        row["gateway_id"]: dict(row)
        for row in rounds.values("gateway_id").annotate(
            total=Sum("meters_total"),
            read=Sum("meters_read"),
            last_success=Max("finished_at", filter=Q(meters_read__gt=0)),
        )
    }
    meters_per_gateway = dict(
        active.exclude(gateway=None).values_list("gateway_id").annotate(n=Count("id"))
    )
    gateways = []
    for gateway in Gateway.objects.filter(site=site).order_by("name"):
        row = by_gateway.get(gateway.pk, {})
        total, read = row.get("total") or 0, row.get("read") or 0
        gateways.append(
            {
                "id": gateway.pk,
                "name": gateway.name,
                "meters": meters_per_gateway.get(gateway.pk, 0),
                "read_share": round(read / total, 4) if total else None,
                "last_success": _iso(row.get("last_success")),
            }
        )
    meters = active.count()
    missing = not_read.count()
    return {
        "slot": _iso(slot),
        "meters": meters,
        "read": meters - missing,
        "not_read_count": missing,
        "not_read": [
            {"id": pk, "serial": serial}
            for pk, serial in not_read.order_by("serial_number").values_list("pk", "serial_number")[
                :NOT_READ_LISTED
            ]
        ],
        "gateways": gateways,
    }


def _queue(site: Site) -> dict[str, Any]:
    items = VerificationItem.objects.filter(site=site).exclude(state=ItemState.RESOLVED)
    by_rule = {
        row["rule"]: {"count": row["count"], "oldest": _iso(row["oldest"])}
        for row in items.values("rule").annotate(count=Count("id"), oldest=Min("created_at"))
    }
    states = Counter(dict(items.values_list("state").annotate(n=Count("id"))))
    flagged = FlaggedBill.objects.filter(site=site, state=ReviewState.OPEN).count()
    return {
        "open": states.get(ItemState.OPEN, 0),
        "awaiting_approval": states.get(ItemState.AWAITING_APPROVAL, 0),
        "by_rule": by_rule,
        "flagged_bills": flagged,
    }


def _periods(site: Site) -> dict[str, Any]:
    periods = PeriodConsumption.objects.filter(site=site)
    trend_rows = (
        periods.filter(status=PeriodStatus.COMPUTED)
        .values("period")
        .annotate(total=Sum("total"))
        .order_by("-period")[:TREND_PERIODS]
    )
    trend = {row["period"]: str(row["total"] or 0) for row in trend_rows}
    latest = periods.order_by("-period").values_list("period", flat=True).first()
    status: dict[str, Any] = {"period": latest, "computed": 0, "held_back": 0, "billed": 0}
    if latest is not None:
        counts = dict(periods.filter(period=latest).values_list("status").annotate(n=Count("id")))
        status["computed"] = counts.get(PeriodStatus.COMPUTED, 0)
        status["held_back"] = counts.get(PeriodStatus.HELD_BACK, 0)
        status["billed"] = billed_account_count(site, latest)
    return {"status": status, "trend": dict(sorted(trend.items()))}


def _line_loss(site: Site) -> list[dict[str, Any]]:
    recent = (
        LineLoss.objects.filter(site=site)
        .order_by("-period")
        .values_list("period", flat=True)
        .distinct()[:LINE_LOSS_PERIODS]
    )
    rows = LineLoss.objects.filter(site=site, period__in=list(recent)).select_related(
        "transformer_area"
    )
    return [
        {
            "area": row.transformer_area.name,
            "period": row.period,
            "rate": str(row.loss_rate) if row.loss_rate is not None else None,
            "expected": str(row.expected_rate),
            "flagged": row.flagged,
        }
        for row in rows.order_by("transformer_area__name", "period")
    ]


def site_summary(site: Site) -> dict[str, Any]:
    slot = current_slot(get_current_tenant()) - timedelta(
        minutes=get_current_tenant().reading_interval_minutes
    )
    return {
        "reading": _reading(site, slot),
        "queue": _queue(site),
        "periods": _periods(site),
        "line_loss": _line_loss(site),
    }


def refresh_summaries() -> int:
    """Recompute every site's summary of the current tenant; returns the number of sites."""
    sites = list(Site.objects.order_by("id"))
    for site in sites:
        data = site_summary(site)
        with transaction.atomic():
            DashboardSummary.objects.update_or_create(
                site=site, defaults={"data": data, "computed_at": timezone.now()}
            )
    return len(sites)


def combined(summaries: list[DashboardSummary]) -> dict[str, Any]:
    """The summaries of several sites as one dashboard: figures added up, lists joined."""
    reading: dict[str, Any] = {"meters": 0, "read": 0, "not_read_count": 0, "not_read": []}
    sites: list[dict[str, Any]] = []
    queue_rules: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "oldest": None})
    queue = {"open": 0, "awaiting_approval": 0, "flagged_bills": 0}
    period_rows: list[dict[str, Any]] = []
    trend: dict[str, float] = defaultdict(float)
    line_loss: list[dict[str, Any]] = []
    for summary in summaries:
        data, site = summary.data, summary.site
        part = data["reading"]
        for key in ("meters", "read", "not_read_count"):
            reading[key] += part[key]
        reading["not_read"].extend({**m, "site": site.name} for m in part["not_read"])
        sites.append({"site": site.name, "site_id": site.pk, **part})
        for rule, row in data["queue"]["by_rule"].items():
            merged = queue_rules[rule]
            merged["count"] += row["count"]
            if row["oldest"] and (merged["oldest"] is None or row["oldest"] < merged["oldest"]):
                merged["oldest"] = row["oldest"]
        for key in queue:
            queue[key] += data["queue"][key]
        period_rows.append({"site": site.name, **data["periods"]["status"]})
        for period, total in data["periods"]["trend"].items():
            trend[period] += float(total)
        line_loss.extend({**row, "site": site.name} for row in data["line_loss"])
    return {
        "reading": reading,
        "sites": sites,
        "queue": queue,
        "queue_rules": sorted(
            ({"rule": rule, **row} for rule, row in queue_rules.items()),
            key=lambda row: row["oldest"] or "",
        ),
        "periods": period_rows,
        "trend": dict(sorted(trend.items())),
        "line_loss": line_loss,
        "computed_at": min((s.computed_at for s in summaries), default=None),
    }
