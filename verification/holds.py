"""What holds an account's period back, as objects a verifier can open.

``compute_periods`` writes a held-back period's reasons as text (``hold_reason``). A verifier
clears them one by one: the suspect reading waiting in the queue, the correction waiting for a
second verifier, or the account's earlier period that is itself still held back. This finds
those objects for a page of held-back periods in a fixed number of queries, whatever the number
of periods or meters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q

from metering.models import Meter
from tenancy.context import get_current_tenant
from verification.models import (
    CorrectionState,
    ItemState,
    PeriodConsumption,
    PeriodStatus,
    ReadingCorrection,
    VerificationItem,
    VerificationSettings,
)

ITEM = "item"
CORRECTION = "correction"
EARLIER_PERIOD = "earlier_period"


@dataclass(frozen=True)
class Hold:
    """One thing that holds a period back: what it is (``item``, ``correction`` or
    ``earlier_period``), the id of the object, and the meter's serial or the period it names."""

    kind: str
    object_id: int
    subject: str


def earlier_period(period: str) -> str:
    """The period before ``YYYY-MM``."""
    year, month = (int(part) for part in period.split("-"))
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def holds_of(periods: Sequence[PeriodConsumption]) -> dict[int, list[Hold]]:
    """For each held-back period (by id): the open queue items and the corrections awaiting
    approval of its account's meters between its opening and its closing window, and its
    account's earlier period when that is held back too. Computed periods hold nothing."""
    held = [p for p in periods if p.status == PeriodStatus.HELD_BACK]
    found: dict[int, list[Hold]] = {p.pk: [] for p in periods}
    if not held:
        return found
    settings = VerificationSettings.for_tenant(get_current_tenant())
    window = timedelta(hours=settings.closing_window_hours)
    meters_of: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for meter_id, account_id, serial in Meter.objects.filter(
        account_id__in={p.account_id for p in held}
    ).values_list("pk", "account_id", "serial_number"):
        meters_of[account_id].append((meter_id, serial))
    meter_ids = [meter_id for meters in meters_of.values() for meter_id, _ in meters]
    start = min(p.starts_at for p in held)
    end = max(p.ends_at for p in held) + window
    items = list(
        VerificationItem.objects.filter(
            meter_id__in=meter_ids,
            state=ItemState.OPEN,
            reading__taken_at__gte=start,
            reading__taken_at__lte=end,
        )
        .order_by("pk")
        .values_list("pk", "meter_id", "reading__taken_at")
    )
    corrections = list(
        ReadingCorrection.objects.filter(
            meter_id__in=meter_ids,
            state=CorrectionState.PROPOSED,
            taken_at__gte=start,
            taken_at__lte=end,
        )
        .order_by("pk")
        .values_list("pk", "meter_id", "taken_at")
    )
    wanted = Q()
    for period in held:
        wanted |= Q(account_id=period.account_id, period=earlier_period(period.period))
    earlier = {
        (account_id, period): pk
        for pk, account_id, period in PeriodConsumption.objects.filter(
            wanted, status=PeriodStatus.HELD_BACK
        ).values_list("pk", "account_id", "period")
    }
    for period in held:
        serials = dict(meters_of.get(period.account_id, []))
        holds = found[period.pk]
        for pk, meter_id, taken_at in items:
            if meter_id in serials and period.starts_at <= taken_at <= period.ends_at + window:
                holds.append(Hold(ITEM, pk, serials[meter_id]))
        for pk, meter_id, taken_at in corrections:
            if meter_id in serials and period.starts_at <= taken_at <= period.ends_at + window:
                holds.append(Hold(CORRECTION, pk, serials[meter_id]))
        before = earlier_period(period.period)
        if (earlier_id := earlier.get((period.account_id, before))) is not None:
            holds.append(Hold(EARLIER_PERIOD, earlier_id, before))
    return found
