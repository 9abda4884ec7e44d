"""Write actions of inspection (稽查): drawing a sample, recording a finding, acknowledging it.

Drawing is reproducible and cheap on a large tenant. The generator is seeded (the seed is kept
with the sample, and the chosen ids with its items), and nothing is ever sorted at random in
the database:

- readings: the site's meter ids are read (one indexed list, a meter a row), meters are picked
  with the seeded generator, and for each a moment of the period is picked and the meter's
  reading at or after it fetched through the (tenant, meter, slot) key. Every meter is equally
  likely, however often it is read: the re-check spreads over the site's meters;
- bills: the ids of the site's issued bills of the period (one indexed list, a bill an account);
- for one staff member, the candidates are what that person did, found through the audit
  trail's index by actor: the readings they entered or approved, the corrections they
  approved, the bills of the runs they approved.

Each item records who answers for the object as it stands: the approver of the correction that
stands in for a reading, else the verifier who approved the suspect reading, else whoever
entered it by hand; for a bill, whoever approved its run. A finding goes to that person.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Bill, BillKind, BillRun, BillState
from inspection.models import (
    MAX_SAMPLE_PART,
    Category,
    Finding,
    FindingState,
    InspectionSample,
    ItemKind,
    ItemState,
    Outcome,
    Responsibility,
    SampleItem,
    SampleState,
    Severity,
)
from metering.models import Meter, Reading, ReadingSource
from tenancy.audit import AuditAction, audit_snapshot, record_audit
from tenancy.models import ActorKind, AuditEvent, Site, User
from tenancy.permissions import allowed_roles
from tenancy.principal import Principal
from verification.models import CorrectionState, ReadingCorrection, VerificationItem
from verification.periods import PeriodError, ensure_ended, period_bounds

# A verifier's approval is recorded in the same transaction as the item it resolves: the audit
# event is looked for within this much of the item's resolution time.
BATCH = 500


@dataclass(frozen=True)
class Answerable:
    """Who answers for an object: a member of staff (``user_id``), or another actor (an API
    client, the system) named by label only."""

    responsibility: str
    label: str
    user_id: int | None

    @classmethod
    def from_actor(
        cls, responsibility: str, kind: str, actor_id: int | None, label: str
    ) -> Answerable:
        return cls(responsibility, label, actor_id if kind == ActorKind.STAFF else None)


NOBODY = Answerable(Responsibility.NOBODY, "", None)
CLOSED = FindingState.CLOSED
RECORDED_FIELDS = [
    "item", "sample", "kind", "outcome", "category", "severity", "note", "responsible_label",
    "responsibility",
]  # fmt: skip


def _batches(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), BATCH):
        yield values[start : start + BATCH]


# --- who answers for what ---------------------------------------------------------------------


def _events_by_object(action: str, object_type: str, ids: Iterable[int]) -> dict[int, AuditEvent]:
    """The latest event of ``action`` on each object, through the audit trail's object index."""
    found: dict[int, AuditEvent] = {}
    for batch in _batches(sorted(set(ids))):
        events = AuditEvent.objects.filter(
            object_type=object_type, object_id__in=[str(pk) for pk in batch], action=action
        ).order_by("id")
        for event in events:
            found[int(event.object_id)] = event
    return found


def _approvals_of(readings: list[Reading]) -> dict[int, Answerable]:
    """Who approved each reading approved in the verification queue, as the item records it."""
    items = VerificationItem.objects.filter(
        reading_id__in=[reading.pk for reading in readings], resolution="approved"
    ).values_list("reading_id", "resolved_by_kind", "resolved_by_id", "resolved_by_label")
    return {
        reading_id: Answerable.from_actor(Responsibility.APPROVED, kind, actor_id, label)
        for reading_id, kind, actor_id, label in items
        if label
    }


def answerable_for_readings(
    readings: list[Reading],
) -> dict[int, tuple[Answerable, ReadingCorrection | None]]:
    """Who answers for each reading as it stands, and the approved correction standing in for
    it (if any)."""
    corrections = {
        (correction.meter_id, correction.taken_at): correction
        for correction in ReadingCorrection.objects.filter(
            state=CorrectionState.APPROVED,
            meter_id__in={reading.meter_id for reading in readings},
            taken_at__in={reading.taken_at for reading in readings},
        )
    }
    correction_events = _events_by_object(
        AuditAction.CORRECTION_APPROVED,
        "verification.readingcorrection",
        [correction.pk for correction in corrections.values()],
    )
    approvals = _approvals_of(readings)
    entries = _events_by_object(
        AuditAction.READING_ENTERED,
        "metering.reading",
        [reading.pk for reading in readings if reading.source == ReadingSource.MANUAL],
    )
    answers: dict[int, tuple[Answerable, ReadingCorrection | None]] = {}
    for reading in readings:
        correction = corrections.get((reading.meter_id, reading.taken_at))
        event = None
        responsibility = Responsibility.NOBODY
        if correction is None and reading.pk in approvals:
            answers[reading.pk] = (approvals[reading.pk], None)
            continue
        if correction is not None:
            event, responsibility = correction_events.get(correction.pk), Responsibility.CORRECTED
        elif reading.pk in entries:
            event, responsibility = entries[reading.pk], Responsibility.ENTERED
        if event is not None:
            answer = Answerable.from_actor(
                responsibility, event.actor_kind, event.actor_id, event.actor_label
            )
        elif correction is not None:
            answer = Answerable(responsibility, correction.approved_by_label, None)
        else:
            answer = NOBODY
        answers[reading.pk] = (answer, correction)
    return answers


def answerable_for_bill_run(run: BillRun | None) -> Answerable:
    if run is None or not run.approved_by_label:
        return NOBODY
    return Answerable.from_actor(
        Responsibility.BILL_RUN_APPROVED, run.approved_by_kind, run.approved_by_id,
        run.approved_by_label,
    )  # fmt: skip


# --- drawing ----------------------------------------------------------------------------------


def _meter_readings(
    rng: random.Random, site: Site, start: datetime, end: datetime, wanted: int
) -> list[int]:
    """Up to ``wanted`` readings of the site's meters in [start, end): a random meter, a random
    moment, that meter's first reading at or after it not chosen yet (else the last one before
    it). Meters are taken in a shuffled order, round after round when there are fewer meters
    than readings wanted."""
    meter_ids = sorted(Meter.objects.filter(site=site).values_list("pk", flat=True))
    if not meter_ids or wanted == 0:
        return []
    span = (end - start).total_seconds()
    chosen: list[int] = []
    attempts = 0
    order = rng.sample(meter_ids, len(meter_ids))
    while len(chosen) < wanted and attempts < 3 * wanted:
        meter_id = order[attempts % len(order)]
        attempts += 1
        moment = start + timedelta(seconds=rng.random() * span)
        in_period = Reading.objects.filter(
            meter_id=meter_id, taken_at__gte=start, taken_at__lt=end
        ).exclude(pk__in=chosen)
        reading_id = (
            in_period.filter(taken_at__gte=moment).order_by("taken_at").values_list("pk", flat=True)
        ).first() or (
            in_period.filter(taken_at__lt=moment).order_by("-taken_at").values_list("pk", flat=True)
        ).first()
        if reading_id is not None:
            chosen.append(reading_id)
    return chosen


def _readings_of_person(site: Site, start: datetime, end: datetime, person: User) -> list[int]:
    """The site's readings of the period that ``person`` entered or approved, or whose
    correction they approved (found through the audit trail's index by actor)."""
    events = AuditEvent.objects.filter(
        actor_kind=ActorKind.STAFF,
        actor_id=person.pk,
        action__in=[
            AuditAction.READING_ENTERED,
            AuditAction.READINGS_APPROVED,
            AuditAction.CORRECTION_APPROVED,
        ],
        created_at__gte=start,
    ).values_list("action", "object_id", "object_ids")
    reading_ids: set[int] = set()
    correction_ids: set[int] = set()
    for action, object_id, object_ids in events:
        if action == AuditAction.READING_ENTERED:
            reading_ids.add(int(object_id))
        elif action == AuditAction.READINGS_APPROVED:
            reading_ids.update(int(pk) for pk in object_ids or [])
        else:
            correction_ids.add(int(object_id))
    for batch in _batches(sorted(correction_ids)):
        reading_ids.update(
            pk
            for pk in ReadingCorrection.objects.filter(
                pk__in=batch, state=CorrectionState.APPROVED, reading__isnull=False
            ).values_list("reading_id", flat=True)
            if pk is not None
        )
    found: list[int] = []
    for batch in _batches(sorted(reading_ids)):
        found.extend(
            Reading.objects.filter(
                pk__in=batch, meter__site=site, taken_at__gte=start, taken_at__lt=end
            ).values_list("pk", flat=True)
        )
    return sorted(found)


def _bills(site: Site, period: str, person: User | None) -> list[int]:
    bills = Bill.objects.filter(
        site=site, period=period, kind=BillKind.BILL, state=BillState.ISSUED, run__isnull=False
    )
    if person is not None:
        runs = BillRun.objects.filter(
            site=site, period=period, approved_by_kind=ActorKind.STAFF, approved_by_id=person.pk
        )
        bills = bills.filter(run__in=runs)
    return sorted(bills.values_list("pk", flat=True))


def _period_bounds(site: Site, period: str) -> tuple[datetime, datetime]:
    try:
        start, end = period_bounds(site, period)
    except PeriodError as exc:
        raise ValidationError({"period": [_("A period is a month: YYYY-MM.")]}) from exc
    ensure_ended(site, period)  # a period still running has readings and bills to come
    return start, end


def _check_counts(readings: int, bills: int) -> None:
    errors: dict[str, list[str]] = {}
    for name, value in (("readings", readings), ("bills", bills)):
        if not 0 <= value <= MAX_SAMPLE_PART:
            errors[name] = [_("Between 0 and %(max)d.") % {"max": MAX_SAMPLE_PART}]
    if not errors and readings + bills == 0:
        errors["readings"] = [_("Ask for at least one reading or one bill.")]
    if errors:
        raise ValidationError(errors)


def draw_sample(
    actor: Principal,
    site: Site,
    period: str,
    *,
    readings: int,
    bills: int,
    staff_id: int | None = None,
    seed: int | None = None,
) -> InspectionSample:
    """Draw a random sample of a site's readings and bills of a period (optionally only what
    one staff member did) for re-check; the seed and the chosen ids are kept."""
    if not actor.site_scope(allowed_roles("inspections", "add")).allows(site.pk):
        raise ValidationError({"site": [_("You may not inspect this site.")]})
    _check_counts(readings, bills)
    start, end = _period_bounds(site, period)
    person = None
    if staff_id is not None:
        person = User.tenant_staff.filter(pk=staff_id).first()
        if person is None:
            raise ValidationError({"staff": [_("No such staff member.")]})
    seed = random.SystemRandom().randrange(2**53) if seed is None else seed
    rng = random.Random(seed)
    if person is None:
        reading_ids = _meter_readings(rng, site, start, end, readings)
    else:
        candidates = _readings_of_person(site, start, end, person)
        reading_ids = rng.sample(candidates, min(readings, len(candidates)))
    bill_candidates = _bills(site, period, person)
    bill_ids = rng.sample(bill_candidates, min(bills, len(bill_candidates)))
    if not reading_ids and not bill_ids:
        raise ValidationError(
            _(
                "Nothing to sample: no readings or issued bills of this site and period that "
                "this staff member handled."
            )
            if person
            else _("Nothing to sample: no readings or issued bills of this site and period.")
        )
    with transaction.atomic():
        sample = InspectionSample.objects.create(
            tenant_id=site.tenant_id,
            site=site,
            period=period,
            staff_id=person.pk if person else None,
            staff_label=person.label if person else "",
            readings_asked=readings,
            bills_asked=bills,
            seed=seed,
            size=len(reading_ids) + len(bill_ids),
            drawn_by_kind=actor.kind,
            drawn_by_id=actor.id,
            drawn_by_label=actor.label[:200],
        )
        _create_items(sample, reading_ids, bill_ids)
        record_audit(
            actor,
            AuditAction.INSPECTION_SAMPLE_DRAWN,
            sample,
            after={
                "period": period,
                "staff": sample.staff_label,
                "seed": seed,
                "readings": reading_ids,
                "bills": bill_ids,
            },
        )
    return sample


def _create_items(sample: InspectionSample, reading_ids: list[int], bill_ids: list[int]) -> None:
    readings = Reading.objects.in_bulk(reading_ids)
    answers = answerable_for_readings(list(readings.values()))
    bills = Bill.objects.select_related("run").in_bulk(bill_ids)
    rows: list[tuple[str, Reading | None, ReadingCorrection | None, Bill | None, Answerable]] = []
    for reading_id in reading_ids:
        answer, correction = answers[reading_id]
        rows.append((ItemKind.READING, readings[reading_id], correction, None, answer))
    for bill_id in bill_ids:
        bill = bills[bill_id]
        rows.append((ItemKind.BILL, None, None, bill, answerable_for_bill_run(bill.run)))
    SampleItem.objects.bulk_create(
        SampleItem(
            tenant=sample.tenant,
            sample=sample,
            site=sample.site,
            position=position,
            kind=kind,
            reading=reading,
            correction=correction,
            bill=bill,
            responsible_id=answer.user_id,
            responsible_label=answer.label[:200],
            responsibility=answer.responsibility,
        )
        for position, (kind, reading, correction, bill, answer) in enumerate(rows, start=1)
    )


# --- findings ---------------------------------------------------------------------------------


def _finding_fields(outcome: str, category: str, severity: str, note: str) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    if outcome not in Outcome.values:
        errors["outcome"] = [_("Choose whether there is a finding.")]
    if outcome == Outcome.FINDING:
        if category not in Category.values:
            errors["category"] = [_("Choose what is wrong.")]
        if severity not in Severity.values:
            errors["severity"] = [_("Choose how serious it is.")]
        if not note.strip():
            errors["note"] = [_("Say what is wrong, so the person responsible can put it right.")]
    if errors:
        raise ValidationError(errors)
    if outcome == Outcome.OK:
        return {"outcome": outcome, "category": "", "severity": "", "note": note.strip()}
    return {"outcome": outcome, "category": category, "severity": severity, "note": note.strip()}


def record_finding(
    actor: Principal,
    item: SampleItem,
    *,
    outcome: str,
    category: str = "",
    severity: str = "",
    note: str = "",
) -> Finding:
    """Record the re-check of one item: no finding, or a finding with a category, a severity
    and a note, addressed to the person who answers for the item. Nobody inspects their own
    work (four eyes)."""
    fields = _finding_fields(outcome, category, severity, note)
    with transaction.atomic():
        # Lock order: the sample, then its item (``record_finding`` is the only writer of both).
        sample = InspectionSample.objects.select_for_update().get(pk=item.sample_id)
        item = SampleItem.objects.select_for_update().get(pk=item.pk)
        if item.state != ItemState.PENDING:
            raise ValidationError(_("This item has been checked already."), code="checked")
        if actor.kind == ActorKind.STAFF and actor.id == item.responsible_id:
            raise ValidationError(
                _("You answer for this item: another inspector checks it (four eyes)."),
                code="four_eyes",
            )
        finding = Finding.objects.create(
            tenant_id=item.tenant_id,
            item=item,
            sample=sample,
            site_id=item.site_id,
            kind=item.kind,
            responsible_id=item.responsible_id,
            responsible_label=item.responsible_label,
            responsibility=item.responsibility,
            state=FindingState.OPEN
            if fields["outcome"] == Outcome.FINDING
            else FindingState.CLOSED,
            recorded_by_kind=actor.kind,
            recorded_by_id=actor.id,
            recorded_by_label=actor.label[:200],
            **fields,
        )
        item.state = ItemState.CHECKED
        item.save(update_fields=["state"])
        sample.checked = F("checked") + 1
        if finding.outcome == Outcome.FINDING:
            sample.findings = F("findings") + 1
        sample.save(update_fields=["checked", "findings"])
        sample.refresh_from_db(fields=["checked", "findings", "size"])
        if sample.checked == sample.size:
            sample.state = SampleState.COMPLETED
            sample.completed_at = timezone.now()
            sample.save(update_fields=["state", "completed_at"])
        record_audit(
            actor,
            AuditAction.INSPECTION_FINDING_RECORDED,
            finding,
            after=audit_snapshot(finding, RECORDED_FIELDS),
        )
    return finding


def acknowledge_finding(actor: Principal, finding: Finding, response: str = "") -> Finding:
    """The person a finding is addressed to acknowledges it, with an optional response (what
    they did about it)."""
    with transaction.atomic():
        finding = Finding.objects.select_for_update().get(pk=finding.pk)
        if actor.kind != ActorKind.STAFF or actor.id != finding.responsible_id:
            raise ValidationError(
                _("Only the person this finding is addressed to acknowledges it."),
                code="not_yours",
            )
        if finding.state != FindingState.OPEN:
            raise ValidationError(_("This finding is not awaiting acknowledgement."))
        finding.state = FindingState.ACKNOWLEDGED
        finding.acknowledged_at = timezone.now()
        finding.response = response.strip()[:2000]
        finding.save(update_fields=["state", "acknowledged_at", "response"])
        record_audit(
            actor,
            AuditAction.INSPECTION_FINDING_ACKNOWLEDGED,
            finding,
            before={"state": FindingState.OPEN},
            after={"state": FindingState.ACKNOWLEDGED, "response": finding.response},
        )
    return finding
