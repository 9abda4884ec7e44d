"""What the read stage reports: each gateway's bus health over a window, the share of meters
read for a slot (by site and by gateway), and the meters a slot did not read.

The API's ``gateways/health`` and ``reading-completeness`` answers and the console's pages both
read these, so a figure is computed one way wherever it is shown. Each function takes a
queryset the caller has already narrowed to what the person may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Sum

from metering.models import Gateway, Meter, MeterStatus, Reading
from metering.slots import current_slot, slot_for
from tenancy.models import Site, Tenant

# --- gateway health -----------------------------------------------------------------------------


def with_health(gateways: QuerySet[Gateway], since: datetime) -> QuerySet[Gateway]:
    """``gateways`` with the sums of their rounds since ``since`` (one grouped query), read by
    :func:`health_of`."""
    window = Q(rounds__slot__gte=since)
    return gateways.annotate(
        rounds_count=Count("rounds", filter=window),
        meters_total_sum=Sum("rounds__meters_total", filter=window),
        meters_read_sum=Sum("rounds__meters_read", filter=window),
        requests_sum=Sum("rounds__requests", filter=window),
        failed_sum=Sum("rounds__failed_requests", filter=window),
        response_ms_sum=Sum("rounds__response_ms_total", filter=window),
        last_success=Max("rounds__finished_at", filter=Q(rounds__meters_read__gt=0)),
    )


def ratio(part: float | None, whole: float | None) -> float | None:
    return round(part / whole, 4) if whole and part is not None else None


@dataclass(frozen=True)
class Health:
    """A gateway's bus over a window: rounds, the last round that read a meter, the share of
    meters read, the share of requests answered, and the mean answer time."""

    rounds: int
    last_success_at: datetime | None
    success_rate: float | None
    request_success_rate: float | None
    mean_response_ms: float | None

    @property
    def state(self) -> str:
        """ok, warn or bad: every meter read, most of them, or under nine in ten (or none)."""
        if self.success_rate is None:
            return "bad" if self.rounds else "unknown"
        if self.success_rate >= 0.999:
            return "ok"
        return "warn" if self.success_rate >= 0.9 else "bad"


def health_of(gateway: Any) -> Health:
    """The health of a gateway annotated by :func:`with_health`."""
    answered = (gateway.requests_sum or 0) - (gateway.failed_sum or 0)
    return Health(
        rounds=gateway.rounds_count,
        last_success_at=gateway.last_success,
        success_rate=ratio(gateway.meters_read_sum, gateway.meters_total_sum),
        request_success_rate=ratio(answered, gateway.requests_sum),
        mean_response_ms=round(gateway.response_ms_sum / answered, 2)
        if answered and gateway.response_ms_sum is not None
        else None,
    )


# --- reading completeness -------------------------------------------------------------------------


def last_finished_slot(tenant: Tenant, now: datetime | None = None) -> datetime:
    """The latest slot whose round has had its whole interval: the one before the current."""
    return current_slot(tenant, now) - timedelta(minutes=tenant.reading_interval_minutes)


def chosen_slot(tenant: Tenant, moment: datetime | None) -> datetime:
    """The slot ``moment`` falls in, or the last finished slot when none is given."""
    if moment is None:
        return last_finished_slot(tenant)
    return slot_for(moment, tenant.reading_interval_minutes)


@dataclass(frozen=True)
class Completeness:
    """How many of a site's (or a gateway's) active meters were read for a slot."""

    key: int
    slot: datetime
    meters: int
    read: int

    @property
    def completeness(self) -> float | None:
        return ratio(self.read, self.meters)

    @property
    def missing(self) -> int:
        return max(self.meters - self.read, 0)


def completeness_by_site(sites: QuerySet[Site], slot: datetime) -> list[Completeness]:
    """Each site's active meters and how many of them were read for ``slot`` (two queries)."""
    active = dict(
        Meter.objects.filter(site__in=sites, status=MeterStatus.ACTIVE)
        .values_list("site_id")
        .annotate(count=Count("id"))
    )
    read = dict(  # a meter has one reading a slot (reading_meter_slot_unique): no DISTINCT
        Reading.objects.filter(meter__site__in=sites, taken_at=slot)
        .values_list("meter__site_id")
        .annotate(count=Count("*"))
    )
    return [
        Completeness(site.pk, slot, active.get(site.pk, 0), read.get(site.pk, 0)) for site in sites
    ]


def completeness_by_gateway(gateways: QuerySet[Gateway], slot: datetime) -> list[Completeness]:
    """Each gateway's active meters and how many of them were read for ``slot`` (two queries)."""
    active = dict(
        Meter.objects.filter(gateway__in=gateways, status=MeterStatus.ACTIVE)
        .values_list("gateway_id")
        .annotate(count=Count("id"))
    )
    read = dict(
        Reading.objects.filter(
            meter__gateway__in=gateways, meter__status=MeterStatus.ACTIVE, taken_at=slot
        )
        .values_list("meter__gateway_id")
        .annotate(count=Count("*"))
    )
    return [
        Completeness(gateway.pk, slot, active.get(gateway.pk, 0), read.get(gateway.pk, 0))
        for gateway in gateways
    ]


def not_read_since(meters: QuerySet[Meter], since: datetime | None) -> QuerySet[Meter]:
    """The meters with no reading for a slot at or after ``since`` (``None``: never read).
    Each test is an indexed look-up of the meter's readings (tenant, meter, slot)."""
    readings = Reading.objects.filter(meter=OuterRef("pk"))
    if since is not None:
        readings = readings.filter(taken_at__gte=since)
    return meters.filter(~Exists(readings))


def not_read_for_slot(meters: QuerySet[Meter], slot: datetime) -> QuerySet[Meter]:
    """The meters with no reading for ``slot``: those the completeness figures count missing
    (when narrowed to active meters)."""
    return meters.filter(~Exists(Reading.objects.filter(meter=OuterRef("pk"), taken_at=slot)))
