"""Period consumption (the billing determinants) and line loss.

A site's billing period closes at 00:00 (the tenant's time) on the site's scheduled reading day
(抄表例日); period "2026-10" runs from the reading day of September to that of October. Its
opening and closing readings are, per meter, the first effective reading at or after 00:00 on
those days within the tenant's closing window; when there is none, the boundary is interpolated
between the readings around it and marked estimated. With no reading after the boundary to
interpolate to, the account is held back: a verifier estimates the missing slot.

An account with anything pending in the period (a suspect reading, a reading not yet validated,
a correction awaiting approval) is held back with the reason, never computed on guesses.
Recomputing a period rewrites the same rows.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Account
from metering.models import Meter, MeterReplacement
from tenancy.audit import AuditAction, record_audit
from tenancy.models import Site, TransformerArea
from tenancy.principal import Principal
from verification.effective import (
    Effective,
    MeterReadings,
    add,
    delta,
    effective_readings,
    interpolate,
    reading_as_effective,
)
from verification.models import LineLoss, PeriodConsumption, PeriodStatus, VerificationSettings

SEARCH_DAYS = 3  # how far around a boundary to look for the readings to interpolate between


class PeriodError(ValueError):
    pass


def period_bounds(site: Site, period: str) -> tuple[datetime, datetime]:
    """The moments a period starts and ends: 00:00 of the reading day, in the tenant's zone."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", period):  # ASCII digits only (not ２)
        raise PeriodError(f"a period is YYYY-MM, got {period!r}")
    year, month = (int(part) for part in period.split("-"))
    if not (1 <= month <= 12 and 2000 <= year <= 2099):
        raise PeriodError(f"a period is YYYY-MM, got {period!r}")
    zone = site.tenant.zone
    day = min(site.reading_day, 28)
    end = datetime(year, month, day, tzinfo=zone)
    previous_year, previous_month = (year, month - 1) if month > 1 else (year - 1, 12)
    day = min(site.reading_day, calendar.monthrange(previous_year, previous_month)[1])
    start = datetime(previous_year, previous_month, day, tzinfo=zone)
    return start, end


def ensure_ended(site: Site, period: str) -> None:
    """Refuse a period that has not ended yet (its closing reading day is still to come): its
    consumption cannot be known, and a run of it would take the period's one run."""
    try:
        _start, end = period_bounds(site, period)
    except PeriodError as exc:
        raise ValidationError({"period": [str(exc)]}, code="invalid") from exc
    if end > timezone.now():
        raise ValidationError(
            {"period": [_("The period %(period)s ends on %(day)s; it can be computed and "
                          "billed after that.") % {"period": period, "day": f"{end:%Y-%m-%d}"}]},
            code="not_ended",
        )  # fmt: skip


@dataclass
class Boundary:
    reading: Effective | None
    problem: str = ""


def boundary(
    meter: Meter, found: MeterReadings, at: datetime, window: timedelta, role: str = "close"
) -> Boundary:
    """The meter's reading that opens (``role="open"``) or closes a period at ``at``."""
    after = [e for e in found.effective if e.taken_at >= at]
    if after and after[0].taken_at <= at + window:
        return Boundary(after[0])
    before = [e for e in found.effective if e.taken_at < at]
    if before and after:
        return Boundary(interpolate(meter, before[-1], after[0], at))
    if not before and not after:
        return Boundary(
            None,
            _("meter %(serial)s: no reading around %(day)s")
            % {"serial": meter.serial_number, "day": f"{at:%Y-%m-%d}"},
        )
    values = {
        "serial": meter.serial_number,
        "side": _("after") if before else _("before"),
        "time": f"{at:%Y-%m-%d %H:%M}",
    }
    if role == "open":
        message = _("meter %(serial)s: no reading %(side)s %(time)s to open the period on; "
                    "propose an estimate of it as a correction "
                    "(from the account's period page)")  # fmt: skip
    else:
        message = _("meter %(serial)s: no reading %(side)s %(time)s to close the period on; "
                    "propose an estimate of it as a correction "
                    "(from the account's period page)")  # fmt: skip
    return Boundary(None, message % values)


@dataclass
class AccountResult:
    values: dict[str, Decimal | None] = field(default_factory=dict)
    openings: list[dict[str, Any]] = field(default_factory=list)
    closings: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    estimated: bool = False
    reactive_energy: Decimal | None = None
    max_demand: Decimal | None = None


def _extra_delta(meter: Meter, opening: Effective, closing: Effective, name: str) -> Decimal | None:
    if name not in opening.extra or name not in closing.extra:
        return None
    raw = Decimal(closing.extra[name]) - Decimal(opening.extra[name])
    return raw * meter.ct_ratio * meter.pt_ratio if raw >= 0 else None


def _segment(
    meter: Meter,
    opening: Effective,
    closing: Effective,
    result: AccountResult,
) -> None:
    result.values = add(result.values, delta(meter, opening, closing))
    result.openings.append(opening.describe())
    result.closings.append(closing.describe())
    result.estimated |= opening.estimated or closing.estimated
    reactive = _extra_delta(meter, opening, closing, "reactive_energy")
    if reactive is not None:
        result.reactive_energy = (result.reactive_energy or Decimal(0)) + reactive
    if "max_demand" in closing.extra:
        demand = Decimal(closing.extra["max_demand"]) * meter.ct_ratio * meter.pt_ratio
        result.max_demand = max(result.max_demand or Decimal(0), demand)


def meter_consumption(
    meters: list[Meter],
    found: dict[int, MeterReadings],
    replacements: dict[int, MeterReplacement],
    start: datetime,
    end: datetime,
    window: timedelta,
) -> AccountResult:
    """What a chain of meters (one, or one replaced by the next) consumed in [start, end)."""
    result = AccountResult()
    for meter in meters:
        readings = found.get(meter.pk, MeterReadings())
        result.problems.extend(
            text for taken_at, text in readings.pending if start <= taken_at <= end + window
        )
    if result.problems:
        return result
    installed_by = {r.new_meter_id: r.replaced_at for r in replacements.values()}
    chain = sorted(
        (m for m in meters if _in_service(m, replacements, start, end)),
        key=lambda m: installed_by.get(m.pk, datetime.min.replace(tzinfo=start.tzinfo)),
    )
    if not chain:
        result.problems.append(_("no meter in service in the period"))
        return result
    for meter in chain:
        swap_out = replacements.get(meter.pk)
        swap_in = next((r for r in replacements.values() if r.new_meter_id == meter.pk), None)
        readings = found.get(meter.pk, MeterReadings())
        installed_at = datetime.combine(meter.installed_on, time(), start.tzinfo)
        if swap_in is not None and start <= swap_in.replaced_at < end:
            opening = Boundary(reading_as_effective(swap_in.new_first_reading))
        elif start < installed_at < end:
            # Installed during the period (a new account): it opens on its first reading.
            first = next((e for e in readings.effective if e.taken_at >= installed_at), None)
            opening = (
                Boundary(first)
                if first is not None and first.taken_at < end
                else Boundary(
                    None,
                    _("meter %(serial)s: no reading since its installation on %(day)s")
                    % {"serial": meter.serial_number, "day": f"{meter.installed_on:%Y-%m-%d}"},
                )
            )
        else:
            opening = boundary(meter, readings, start, window, role="open")
        if swap_out is not None and start <= swap_out.replaced_at < end:
            closing = Boundary(reading_as_effective(swap_out.old_final_reading))
        else:
            closing = boundary(meter, readings, end, window)
        if opening.reading is None or closing.reading is None:
            result.problems.extend(p for p in (opening.problem, closing.problem) if p)
            continue
        _segment(meter, opening.reading, closing.reading, result)
    return result


def _in_service(
    meter: Meter, replacements: dict[int, MeterReplacement], start: datetime, end: datetime
) -> bool:
    swap_out = replacements.get(meter.pk)
    swap_in = next((r for r in replacements.values() if r.new_meter_id == meter.pk), None)
    if swap_out is not None and swap_out.replaced_at < start:
        return False
    return not (swap_in is not None and swap_in.replaced_at >= end)


@dataclass
class PeriodSummary:
    period: str
    computed: int = 0
    held_back: int = 0
    held_back_reasons: dict[str, str] = field(default_factory=dict)
    line_losses: int = 0


COMPUTE_CHUNK = 2000  # accounts read and written together: memory stays flat with the site


class Checkpoint(Protocol):
    """Where a computation run as a task stands (``verification.computations``): read before
    each chunk and moved in the chunk's own transaction, so a task delivered again, or started
    again, resumes after the last committed chunk, and two tasks at once never write a chunk
    twice nor count it twice."""

    def position(self) -> tuple[int, int, int]:
        """The last account computed, and the accounts computed and held back so far."""

    def advance(self, after: int, to: int, computed: int, held_back: int) -> bool:
        """In the chunk's transaction: move on from ``after`` to ``to`` with the counts so far,
        or answer False when another task moved on first (the chunk is then not written)."""


def compute_periods(
    actor: Principal,
    site: Site,
    period: str,
    checkpoint: Checkpoint | None = None,
) -> PeriodSummary:
    """Compute (or recompute) every account of a site for a period, and the site's line loss.

    Accounts are taken in chunks (their meters, those meters' readings, their rows written),
    so a site of any size is computed in the memory of one chunk. With a ``checkpoint`` the
    computation starts after the last account it records and moves it with each chunk."""
    start, end = period_bounds(site, period)
    settings = VerificationSettings.for_tenant(site.tenant)
    window = timedelta(hours=settings.closing_window_hours)
    search = timedelta(days=SEARCH_DAYS)
    accounts = Account.objects.filter(site=site, opened_on__lte=end.date()).exclude(
        closed_on__lt=start.date()
    )
    replacements = {
        r.old_meter_id: r
        for r in MeterReplacement.objects.select_related(
            "old_final_reading", "new_first_reading"
        ).filter(old_meter__site=site)
    }
    summary = PeriodSummary(period)
    after = 0
    while True:
        if checkpoint is not None:
            after, summary.computed, summary.held_back = checkpoint.position()
        chunk = list(accounts.filter(pk__gt=after).order_by("pk")[:COMPUTE_CHUNK])
        if not chunk:
            break
        meters_by_account: dict[int, list[Meter]] = defaultdict(list)
        chunk_meters = list(
            Meter.objects.filter(site=site, account_id__in=[a.pk for a in chunk]).order_by(
                "installed_on", "id"
            )
        )
        for meter in chunk_meters:
            assert meter.account_id is not None  # filtered on it
            meters_by_account[meter.account_id].append(meter)
        found = effective_readings(
            [meter.pk for meter in chunk_meters], start - search, end + window + search
        )
        found = _only_in_boundaries(found, start, end, window, search)
        rows = []
        reasons: dict[str, str] = {}
        held = summary.held_back
        for account in chunk:
            result = meter_consumption(
                meters_by_account.get(account.pk, []), found, replacements, start, end, window
            )
            if not meters_by_account.get(account.pk):
                result.problems = [_("the account has no meter")]
            rows.append(_period_row(account, site, period, start, end, result))
            if result.problems:
                held += 1
                reasons[account.number] = "; ".join(result.problems)
        computed = summary.computed + len(chunk) - (held - summary.held_back)
        with transaction.atomic():
            if checkpoint is not None and not checkpoint.advance(
                after, chunk[-1].pk, computed, held
            ):
                continue  # another task computed this chunk: carry on from where it stands
            _write_periods(rows)
        summary.computed, summary.held_back = computed, held
        summary.held_back_reasons |= reasons
        after = chunk[-1].pk
    masters: dict[int, list[Meter]] = defaultdict(list)
    master_meters = list(
        Meter.objects.filter(site=site, master_of__isnull=False).order_by("installed_on", "id")
    )
    for meter in master_meters:
        assert meter.master_of_id is not None  # filtered on it
        masters[meter.master_of_id].append(meter)
    found = effective_readings(
        [meter.pk for meter in master_meters], start - search, end + window + search
    )
    found = _only_in_boundaries(found, start, end, window, search)
    with transaction.atomic():
        summary.line_losses = _line_losses(
            site, period, masters, found, replacements, start, end, window, settings
        )
        record_audit(
            actor,
            AuditAction.PERIOD_COMPUTED,
            site,
            object_type="billing.periodconsumption",
            after={
                "period": period,
                "computed": summary.computed,
                "held_back": summary.held_back,
            },
        )
    return summary


def _write_periods(rows: list[PeriodConsumption]) -> None:
    PeriodConsumption.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "account", "period"],
        update_fields=[
            "starts_at", "ends_at", "status", "hold_reason", "total", "tou_spike", "tou_peak",
            "tou_flat", "tou_valley", "reactive_energy", "max_demand", "estimated", "opening",
            "closing", "computed_at",
        ],
        batch_size=1000,
    )  # fmt: skip


def _only_in_boundaries(
    found: dict[int, MeterReadings],
    start: datetime,
    end: datetime,
    window: timedelta,
    search: timedelta,
) -> dict[int, MeterReadings]:
    """Pending items count anywhere in the period; effective readings are needed only near the
    two boundaries."""
    kept: dict[int, MeterReadings] = {}
    for meter_id, readings in found.items():
        near = [
            e
            for index, e in enumerate(readings.effective)
            if start - search <= e.taken_at <= start + window + search
            or end - search <= e.taken_at <= end + window + search
            or index == 0  # a meter installed in the period opens on its first reading
        ]
        kept[meter_id] = MeterReadings(near, readings.pending)
    return kept


def _period_row(
    account: Account,
    site: Site,
    period: str,
    start: datetime,
    end: datetime,
    result: AccountResult,
) -> PeriodConsumption:
    held = bool(result.problems)
    values = {} if held else result.values
    return PeriodConsumption(
        tenant_id=account.tenant_id,
        account=account,
        site=site,
        period=period,
        starts_at=start,
        ends_at=end,
        status=PeriodStatus.HELD_BACK if held else PeriodStatus.COMPUTED,
        hold_reason="; ".join(result.problems)[:500],
        total=values.get("total"),
        tou_spike=values.get("tou_spike"),
        tou_peak=values.get("tou_peak"),
        tou_flat=values.get("tou_flat"),
        tou_valley=values.get("tou_valley"),
        reactive_energy=None if held else result.reactive_energy,
        max_demand=None if held else result.max_demand,
        estimated=result.estimated and not held,
        opening=result.openings,
        closing=result.closings,
        computed_at=timezone.now(),
    )


def _line_losses(
    site: Site,
    period: str,
    masters: dict[int, list[Meter]],
    found: dict[int, MeterReadings],
    replacements: dict[int, MeterReplacement],
    start: datetime,
    end: datetime,
    window: timedelta,
    settings: VerificationSettings,
) -> int:
    """台区线损 of each transformer area with a master meter: master against customers."""
    customer_totals: dict[int, Decimal] = {}
    held: dict[int, int] = {}
    by_area = (
        PeriodConsumption.objects.filter(
            site=site, period=period, account__premise__transformer_area__isnull=False
        )
        .values_list("account__premise__transformer_area_id")
        .annotate(
            total=Sum("total", filter=Q(status=PeriodStatus.COMPUTED)),
            held=Count("id", filter=Q(status=PeriodStatus.HELD_BACK)),
        )
    )
    for area_id, total, held_count in by_area:
        customer_totals[area_id] = total or Decimal(0)
        held[area_id] = held_count
    rows = []
    for area in TransformerArea.objects.filter(site=site):
        master = meter_consumption(
            masters.get(area.pk, []), found, replacements, start, end, window
        )
        master_total = None if master.problems else master.values.get("total")
        customers = customer_totals.get(area.pk, Decimal(0))
        loss = master_total - customers if master_total is not None else None
        rate = (loss / master_total).quantize(Decimal("0.0001")) if master_total else None  # type: ignore[operator]
        notes = list(master.problems)
        if held.get(area.pk):
            notes.append(_("%(count)s customer account(s) held back") % {"count": held[area.pk]})
        rows.append(
            LineLoss(
                tenant_id=site.tenant_id,
                transformer_area=area,
                site=site,
                period=period,
                master_consumption=master_total,
                customers_consumption=customers,
                loss=loss,
                loss_rate=rate,
                expected_rate=settings.expected_line_loss,
                flagged=rate is not None and rate > settings.expected_line_loss,
                note="; ".join(notes)[:300],
                computed_at=timezone.now(),
            )
        )
    LineLoss.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["tenant", "transformer_area", "period"],
        update_fields=[
            "master_consumption",
            "customers_consumption",
            "loss",
            "loss_rate",
            "expected_rate",
            "flagged",
            "note",
            "computed_at",
        ],
    )
    return len(rows)
