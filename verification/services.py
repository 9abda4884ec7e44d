"""Write actions of verification: approving suspect readings, edits and estimates (four eyes),
and the verification settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from metering.models import Meter
from tenancy.audit import AuditAction, audit_snapshot, record_audit, update_with_audit
from tenancy.context import get_current_tenant
from tenancy.principal import Principal
from verification.effective import REGISTERS, Effective, delta, effective_readings, modulus
from verification.models import (
    CheckStatus,
    CorrectionKind,
    CorrectionState,
    EstimateMethod,
    ItemState,
    ReadingCheck,
    ReadingCorrection,
    VerificationItem,
    VerificationSettings,
)

HISTORY_DAYS = 30
CENT = Decimal("0.01")


def approve_readings(actor: Principal, items: Sequence[VerificationItem]) -> list[int]:
    """Accept suspect readings as they are (the verifier checked them); one audit event for the
    batch, listing the readings. All or nothing: an item that is not open refuses the batch,
    and the refusal names every such item."""
    with transaction.atomic():
        open_items = list(
            VerificationItem.objects.select_for_update()
            .filter(pk__in=[item.pk for item in items], state=ItemState.OPEN)
            .order_by("pk")
        )
        if refused := sorted({item.pk for item in items} - {item.pk for item in open_items}):
            raise ValidationError(
                _("Only open items can be approved; not open: %(ids)s")
                % {"ids": ", ".join(str(pk) for pk in refused)},
                code="not_open",
            )
        reading_ids = [item.reading_id for item in open_items]
        ReadingCheck.objects.filter(reading_id__in=reading_ids).update(status=CheckStatus.APPROVED)
        for item in open_items:
            item.resolve(actor, "approved")
        record_audit(
            actor,
            AuditAction.READINGS_APPROVED,
            object_type="metering.reading",
            object_ids=reading_ids,
            after={"items": [item.pk for item in open_items]},
        )
    return reading_ids


def _quantised(values: dict[str, Decimal | None]) -> dict[str, Decimal | None]:
    return {
        name: value.quantize(CENT, ROUND_HALF_UP) if value is not None else None
        for name, value in values.items()
    }


def _propose(
    actor: Principal,
    meter: Meter,
    taken_at: datetime,
    kind: str,
    values: Mapping[str, Decimal | None],
    reason: str,
    *,
    reading_id: int | None = None,
    method: str = "",
    item: VerificationItem | None = None,
) -> ReadingCorrection:
    if not reason.strip():
        raise ValidationError({"reason": _("A reason is required.")})
    if ReadingCorrection.objects.filter(
        meter=meter,
        taken_at=taken_at,
        state__in=[CorrectionState.PROPOSED, CorrectionState.APPROVED],
    ).exists():
        raise ValidationError(_("This slot already has a correction."))
    correction = ReadingCorrection.objects.create(
        tenant=get_current_tenant(),
        meter=meter,
        site_id=meter.site_id,
        taken_at=taken_at,
        reading_id=reading_id,
        kind=kind,
        method=method,
        reason=reason,
        created_by_kind=actor.kind,
        created_by_id=actor.id,
        created_by_label=actor.label[:200],
        **_quantised({name: values.get(name) for name in REGISTERS}),
    )
    if item is not None:
        item.state = ItemState.AWAITING_APPROVAL
        item.correction = correction
        item.save(update_fields=["state", "correction"])
    record_audit(
        actor,
        AuditAction.CORRECTION_PROPOSED,
        correction,
        after=audit_snapshot(
            correction, ["meter", "taken_at", "kind", "method", "reason", *REGISTERS]
        ),
    )
    return correction


def _open_item(item: VerificationItem) -> VerificationItem:
    item = VerificationItem.objects.select_for_update().get(pk=item.pk)
    if item.state != ItemState.OPEN:
        raise ValidationError(_("This item is not open."))
    return item


def edit_reading(
    actor: Principal, item: VerificationItem, values: dict[str, Decimal], reason: str
) -> ReadingCorrection:
    """A verifier's corrected registers for a suspect reading, with the reason. The raw reading
    stays as it was; the edit counts once another verifier approves it."""
    with transaction.atomic():
        item = _open_item(item)
        reading = item.reading
        return _propose(
            actor,
            reading.meter,
            reading.taken_at,
            CorrectionKind.EDIT,
            values,
            reason,
            reading_id=reading.pk,
            item=item,
        )


def estimate_reading(
    actor: Principal, item: VerificationItem, method: str, reason: str
) -> ReadingCorrection:
    """Replace a suspect reading by an estimate (same period last year, or the recent daily
    average), awaiting a second verifier's approval."""
    with transaction.atomic():
        item = _open_item(item)
        reading = item.reading
        values = estimate_values(reading.meter, reading.taken_at, method)
        return _propose(
            actor,
            reading.meter,
            reading.taken_at,
            CorrectionKind.ESTIMATE,
            values,
            reason,
            reading_id=reading.pk,
            method=method,
            item=item,
        )


def estimate_missing(
    actor: Principal, meter: Meter, taken_at: datetime, method: str, reason: str
) -> ReadingCorrection:
    """An estimate for a slot no reading arrived for (a period that cannot close otherwise).
    Superseded when a real reading for the slot arrives and checks valid."""
    with transaction.atomic():
        values = estimate_values(meter, taken_at, method)
        return _propose(
            actor, meter, taken_at, CorrectionKind.ESTIMATE, values, reason, method=method
        )


def approve_correction(actor: Principal, correction: ReadingCorrection) -> ReadingCorrection:
    """Four eyes: the correction counts once a verifier who did not make it approves it."""
    with transaction.atomic():
        correction = ReadingCorrection.objects.select_for_update().get(pk=correction.pk)
        if correction.state != CorrectionState.PROPOSED:
            raise ValidationError(_("Only a proposed correction can be approved."))
        if correction.created_by_kind == actor.kind and correction.created_by_id == actor.id:
            raise ValidationError(
                _("Nobody approves their own edit or estimate (four eyes)."), code="four_eyes"
            )
        correction.state = CorrectionState.APPROVED
        correction.approved_by_id = actor.id
        correction.approved_by_label = actor.label[:200]
        correction.approved_at = timezone.now()
        correction.save(
            update_fields=["state", "approved_by_id", "approved_by_label", "approved_at"]
        )
        if correction.reading_id:
            ReadingCheck.objects.filter(reading_id=correction.reading_id).update(
                status=CheckStatus.REPLACED
            )
        for item in VerificationItem.objects.filter(correction=correction):
            item.resolve(actor, correction.kind)
        record_audit(
            actor,
            AuditAction.CORRECTION_APPROVED,
            correction,
            before={"state": CorrectionState.PROPOSED},
            after={"state": CorrectionState.APPROVED, "created_by": correction.created_by_label},
        )
    return correction


def reject_correction(
    actor: Principal, correction: ReadingCorrection, reason: str
) -> ReadingCorrection:
    """Send a correction back: its item is open again."""
    if not reason.strip():
        raise ValidationError({"reason": _("A reason is required.")})
    with transaction.atomic():
        correction = ReadingCorrection.objects.select_for_update().get(pk=correction.pk)
        if correction.state != CorrectionState.PROPOSED:
            raise ValidationError(_("Only a proposed correction can be rejected."))
        correction.state = CorrectionState.REJECTED
        correction.save(update_fields=["state"])
        VerificationItem.objects.filter(correction=correction).update(
            state=ItemState.OPEN, correction=None
        )
        record_audit(actor, AuditAction.CORRECTION_REJECTED, correction, after={"reason": reason})
    return correction


# --- estimates --------------------------------------------------------------------------------


def _history(meter: Meter, before: datetime, days: int) -> list[Effective]:
    found = effective_readings([meter.pk], before - timedelta(days=days), before)
    return (
        [e for e in found.get(meter.pk).effective if e.taken_at < before]  # type: ignore[union-attr]
        if found.get(meter.pk)
        else []
    )


def _shares(meter: Meter, readings: list[Effective]) -> dict[str, Decimal] | None:
    """How the account's recent consumption split over the four TOU registers."""
    if len(readings) < 2:
        return None
    used = delta(meter, readings[0], readings[-1])
    total = sum((used.get(name) or Decimal(0)) for name in REGISTERS[1:])
    if not total or any(used.get(name) is None for name in REGISTERS[1:]):
        return None
    return {name: used[name] / total for name in REGISTERS[1:]}  # type: ignore[operator]


def _last_year(meter: Meter, start: datetime, end: datetime) -> Decimal:
    """The hourly rate the meter ran at over the same span a year earlier."""
    year_start, year_end = start - timedelta(days=365), end - timedelta(days=365)
    margin = timedelta(days=2)
    found = effective_readings([meter.pk], year_start - margin, year_end + margin).get(meter.pk)
    readings = found.effective if found else []
    before = [e for e in readings if e.taken_at <= year_start]
    after = [e for e in readings if e.taken_at >= year_end]
    if not before or not after:
        raise ValidationError(_("There are no readings of this span last year."))
    first, last = before[-1], after[0]
    hours = Decimal((last.taken_at - first.taken_at).total_seconds()) / 3600
    factor = meter.ct_ratio * meter.pt_ratio
    return delta(meter, first, last)["total"] / factor / hours  # type: ignore[operator]


def estimate_values(meter: Meter, taken_at: datetime, method: str) -> dict[str, Decimal | None]:
    """The registers at ``taken_at`` from the last effective reading before it plus an estimated
    consumption: the same span last year, or the daily average of the last 30 days. The TOU
    registers share it by the account's recent TOU shares and add up to it exactly."""
    if method not in (EstimateMethod.LAST_YEAR, EstimateMethod.DAILY_AVERAGE):
        raise ValidationError({"method": _("Estimate from last_year or daily_average.")})
    recent = _history(meter, taken_at, HISTORY_DAYS)
    if not recent:
        raise ValidationError(_("No valid reading before this slot to estimate from."))
    previous = recent[-1]
    hours = Decimal((taken_at - previous.taken_at).total_seconds()) / 3600
    factor = meter.ct_ratio * meter.pt_ratio
    if method == EstimateMethod.LAST_YEAR:
        used = _last_year(meter, previous.taken_at, taken_at) * hours
    else:
        if len(recent) < 2:
            raise ValidationError(_("Too little recent history for a daily average."))
        span_hours = Decimal((previous.taken_at - recent[0].taken_at).total_seconds()) / 3600
        used = delta(meter, recent[0], previous)["total"] / factor / span_hours * hours  # type: ignore[operator]
    used = used.quantize(CENT, ROUND_HALF_UP)
    wrap = modulus(meter)
    values: dict[str, Decimal | None] = {
        "total": (previous.values["total"] + used) % wrap  # type: ignore[operator]
    }
    shares = _shares(meter, recent)
    if shares is None:
        return values | {name: None for name in REGISTERS[1:]}
    parts = {name: (used * share).quantize(CENT, ROUND_HALF_UP) for name, share in shares.items()}
    largest = max(parts, key=lambda name: parts[name])
    parts[largest] += used - sum(parts.values())
    for name, part in parts.items():
        base = previous.values.get(name)
        values[name] = (base + part) % wrap if base is not None else None
    return values


def update_verification_settings(
    actor: Principal, settings: VerificationSettings, changes: dict[str, Any]
) -> VerificationSettings:
    return update_with_audit(actor, settings, changes, AuditAction.VERIFICATION_SETTINGS_UPDATED)
