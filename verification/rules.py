"""Validating readings in bulk, in the database.

Every reading that arrives gets a ``ReadingCheck``: which rules fired and whether it is valid or
suspect. The rules run as one SQL statement per chunk of meters, set-based: window functions
(``LAG`` for the reading before, a moving ``AVG`` for the meter's recent hourly rate) over the
meters' readings, the rules as ``CASE`` expressions, and ``INSERT … SELECT`` straight into the
checks, so a million readings never pass through Python one by one. Suspect readings then go
to the verification queue in one more statement.

The rules (thresholds per tenant, ``VerificationSettings``):

- ``future``: read or slot later than now (plus the clock tolerance);
- ``duplicate``: the same answer time as the reading before;
- ``out_of_order``: read earlier than the reading of the slot before;
- ``backwards``: the total fell and it is not a wrap (a wrap is a fall from near the top of the
  counter to near zero: the wrapped consumption is under 1 % of the counter's range);
- ``spike``: more than the floor consumed, at over ``spike_factor`` times the meter's average
  hourly rate over its last ``history_readings`` readings;
- ``zero_with_power``: nothing consumed while the meter shows power that should have moved the
  counter by at least two steps;
- ``tou_mismatch``: the four TOU registers do not add up to the total (modulo the wrap);
- ``after_removal`` / ``before_installation``: a reading of a replaced meter after the swap,
  or of its successor before it, or a reading of a day (in the tenant's zone) before the
  meter's installation day;
- ``implausible_time``: a slot or answer time before 2000 or over a year ahead (the read stage
  refuses these at the door; one stored before that check or by another path is judged here);
- ``cannot_check``: the rules' statement failed on the meter's readings (a value the database
  cannot compute with): logged, and the reading waits for a verifier instead of stopping the
  tenant's validation;
- notices, which do not hold a reading back: ``wrap`` and ``gap`` (long silence before it).

A reading is judged against its meter's previous reading however long ago that was: each meter's
context starts ``history_readings`` + 1 readings before its earliest unchecked one, found by one
probe of the (tenant, meter, slot) key per meter, so a gap of hours or months neither hides the
previous reading nor makes the statement read the meter's whole history. A reading stored late,
for a slot before readings already checked, changes what the reading after it is compared with:
that one check (valid, or suspect with its item still open) is dropped and made again in the
same transaction; a verifier's decision on it stands.

Any number of validations may run at once (every polling shard's commit starts one for its
tenant, and a sweep runs every five minutes): on PostgreSQL each takes the tenant's advisory
lock for its run, so they take turns and each finds only what the one before left unchecked;
and the insert skips a reading that already has a check, so no reading is checked twice and
none raises. A reading stored while a run works starts a run of its own after its commit.

Both inserts skip what already exists by their unique keys (``ON CONFLICT DO NOTHING``), not by
a ``NOT EXISTS`` against the table they fill: while that table is new or just emptied, its
statistics say it is empty and PostgreSQL plans the ``NOT EXISTS`` as a scan of the whole table
for every row (35,200 readings took 18 s to check and 13 s to queue, measured; a unique-key probe
takes 1 s for both). The queue and the counts look up this run's checks through the
(tenant, meter, slot) index from the first slot the run looked at, never the whole table.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import DataError, connection, transaction
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from metering.meter_profiles import all_profiles
from metering.models import Reading
from tenancy.audit import AuditAction, record_audit
from tenancy.models import Tenant
from tenancy.principal import Principal
from verification.models import (
    CheckStatus,
    CorrectionKind,
    CorrectionState,
    ItemState,
    ReadingCheck,
    ReadingCorrection,
    Rule,
    VerificationItem,
    VerificationSettings,
)

logger = logging.getLogger(__name__)

METERS_PER_CHUNK = 5000
WRAP_SHARE = "0.01"  # a wrap consumes less than this share of the counter's range
PLAUSIBLE_FROM = datetime(2000, 1, 1, tzinfo=UTC)  # no reading is judged against one before


@dataclass
class ValidationSummary:
    checked: int = 0
    suspect: int = 0
    by_rule: Counter = field(default_factory=Counter)
    superseded_estimates: list[int] = field(default_factory=list)
    rechecked: int = 0  # checked before, checked again: a reading stored late now precedes them


def _hours_between(later: str, earlier: str) -> str:
    if connection.vendor == "postgresql":
        return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 3600.0)"
    return f"((julianday({later}) - julianday({earlier})) * 24.0)"


def _first_rule(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"split_part({column}, ',', 1)"
    return (
        f"CASE WHEN instr({column}, ',') > 0 THEN substr({column}, 1, instr({column}, ',') - 1) "
        f"ELSE {column} END"
    )


def _profile_case(attribute: str) -> str:
    """A CASE over the meter's profile name giving its wrap or its counter step."""
    branches = []
    for name, profile in all_profiles().items():
        value: Decimal | int
        if attribute == "wrap":
            value = profile.wrap
        else:
            total = profile.value("total")
            value = total.scale if total is not None else 1
        branches.append(f"WHEN '{name}' THEN {value}")
    return f"(CASE m.profile {' '.join(branches)} END)"


def _local_date(column: str) -> str:
    """The day of a stored moment in the tenant's zone (``%(zone)s``)."""
    if connection.vendor == "postgresql":
        return f"CAST(({column} AT TIME ZONE %(zone)s) AS date)"
    return f"django_datetime_cast_date({column}, %(zone)s, 'UTC')"  # Django's SQLite function


def _bounds_sql(meter_ids: list[int], *, with_start: bool) -> str:
    """A derived table of the chunk's meters: the slot of each meter's earliest unchecked reading
    (``earliest``) and, ``with_start``, where its context starts (``context_start``), both bound
    as parameters ``e<i>`` and ``c<i>``."""
    rows = ", ".join(
        f"({int(meter_id)}, %(e{index})s" + (f", %(c{index})s)" if with_start else ")")
        for index, meter_id in enumerate(meter_ids)
    )
    columns = "column1 AS meter_id, column2 AS earliest"
    columns += ", column3 AS context_start" if with_start else ""
    return f"SELECT {columns} FROM (VALUES {rows}) v"


def _check_sql(meter_ids: list[int], only: list[int] | None = None) -> str:
    """The statement that checks the chunk's unchecked readings from each meter's earliest on
    (``only``: just these readings, the ones being checked again)."""
    hours = _hours_between("s.taken_at", "s.prev_taken_at")
    meters = ", ".join(str(int(meter_id)) for meter_id in meter_ids)
    tou_sum = "(h.tou_spike + h.tou_peak + h.tou_flat + h.tou_valley)"
    bounds = _bounds_sql(meter_ids, with_start=True)
    chosen = f"AND x.id IN ({', '.join(str(int(pk)) for pk in only)})" if only else ""
    # Built from fixed fragments, profile constants and integer ids; the values are parameters.
    return f"""
INSERT INTO verification_readingcheck
    (tenant_id, reading_id, meter_id, site_id, taken_at, status, rules,
     previous_reading_id, consumption, checked_at)
SELECT x.tenant_id, x.id, x.meter_id, x.site_id, x.taken_at,
       CASE WHEN x.suspect_rules <> '' THEN 'suspect' ELSE 'valid' END,
       ltrim(x.suspect_rules || x.notice_rules, ','),
       x.prev_id, x.consumption, %(now)s
FROM (
  SELECT h.id, h.tenant_id, h.meter_id, h.site_id, h.taken_at, h.prev_id, h.consumption,
    h.earliest,
    (CASE WHEN h.taken_at > %(future)s OR h.read_at > %(future)s THEN ',future' ELSE '' END
     || CASE WHEN h.read_at = h.prev_read_at THEN ',duplicate' ELSE '' END
     || CASE WHEN h.read_at < h.prev_read_at THEN ',out_of_order' ELSE '' END
     || CASE WHEN h.backwards = 1 THEN ',backwards' ELSE '' END
     || CASE WHEN h.consumption > %(spike_min)s AND h.hours > 0 AND h.avg_rate > 0
              AND h.consumption / h.hours > %(spike_factor)s * h.avg_rate
             THEN ',spike' ELSE '' END
     || CASE WHEN h.consumption = 0 AND h.power > %(zero_power)s
              AND h.power * h.hours >= 2 * h.step THEN ',zero_with_power' ELSE '' END
     || CASE WHEN h.tou_spike IS NOT NULL AND h.tou_peak IS NOT NULL AND h.tou_flat IS NOT NULL
              AND h.tou_valley IS NOT NULL
              AND abs({tou_sum} - h.total) > %(tou_tolerance)s
              AND abs({tou_sum} - h.total - h.modulus) > %(tou_tolerance)s
              AND abs({tou_sum} - h.total - 2 * h.modulus) > %(tou_tolerance)s
              AND abs({tou_sum} - h.total - 3 * h.modulus) > %(tou_tolerance)s
             THEN ',tou_mismatch' ELSE '' END
     || CASE WHEN h.removed_at IS NOT NULL AND h.taken_at > h.removed_at
             THEN ',after_removal' ELSE '' END
     || CASE WHEN (h.installed_at IS NOT NULL AND h.taken_at < h.installed_at)
              OR h.before_installed = 1
             THEN ',before_installation' ELSE '' END
    ) AS suspect_rules,
    (CASE WHEN h.wrapped = 1 THEN ',wrap' ELSE '' END
     || CASE WHEN h.hours > %(gap_hours)s THEN ',gap' ELSE '' END) AS notice_rules
  FROM (
    SELECT d.*,
      AVG(CASE WHEN d.hours > 0 AND d.backwards = 0 THEN d.consumption / d.hours END)
        OVER (PARTITION BY d.meter_id ORDER BY d.taken_at
              ROWS BETWEEN %(history)s PRECEDING AND 1 PRECEDING) AS avg_rate
    FROM (
      SELECT s.*,
        {hours} AS hours,
        CASE WHEN s.prev_total IS NULL THEN NULL
             WHEN s.total >= s.prev_total THEN s.total - s.prev_total
             WHEN s.total + s.modulus - s.prev_total <= s.modulus * {WRAP_SHARE}
               THEN s.total + s.modulus - s.prev_total
             ELSE NULL END AS consumption,
        CASE WHEN s.total < s.prev_total
              AND s.total + s.modulus - s.prev_total > s.modulus * {WRAP_SHARE}
             THEN 1 ELSE 0 END AS backwards,
        CASE WHEN s.total < s.prev_total
              AND s.total + s.modulus - s.prev_total <= s.modulus * {WRAP_SHARE}
             THEN 1 ELSE 0 END AS wrapped
      FROM (
        SELECT r.id, r.tenant_id, r.meter_id, m.site_id, r.taken_at, r.read_at, r.total, r.power,
          r.tou_spike, r.tou_peak, r.tou_flat, r.tou_valley,
          LAG(r.id) OVER w AS prev_id,
          LAG(r.total) OVER w AS prev_total,
          LAG(r.taken_at) OVER w AS prev_taken_at,
          LAG(r.read_at) OVER w AS prev_read_at,
          {_profile_case("step")} AS step,
          COALESCE(m.wrap_value, {_profile_case("wrap")}) + {_profile_case("step")} AS modulus,
          old.replaced_at AS removed_at,
          new.replaced_at AS installed_at,
          CASE WHEN {_local_date("r.taken_at")} < m.installed_on THEN 1 ELSE 0 END
            AS before_installed,
          b.earliest
        FROM metering_reading r
        JOIN ({bounds}) b ON b.meter_id = r.meter_id
        JOIN metering_meter m ON m.id = r.meter_id
        LEFT JOIN metering_meterreplacement old
          ON old.tenant_id = r.tenant_id AND old.old_meter_id = r.meter_id
        LEFT JOIN metering_meterreplacement new
          ON new.tenant_id = r.tenant_id AND new.new_meter_id = r.meter_id
        WHERE r.tenant_id = %(tenant)s AND r.meter_id IN ({meters})
          AND r.taken_at >= b.context_start
        WINDOW w AS (PARTITION BY r.meter_id ORDER BY r.taken_at)
      ) s
    ) d
  ) h
) x
WHERE x.taken_at >= x.earliest {chosen}
ON CONFLICT DO NOTHING
"""


_QUEUE_SQL = """
INSERT INTO verification_verificationitem
    (tenant_id, site_id, reading_id, meter_id, rule, rules, state, resolution, created_at,
     resolved_by_kind, resolved_by_label)
SELECT c.tenant_id, c.site_id, c.reading_id, c.meter_id, {first_rule}, c.rules,
       'open', '', %(now)s, '', ''
FROM verification_readingcheck c
WHERE c.tenant_id = %(tenant)s AND c.meter_id IN ({meters})
  AND c.taken_at >= %(since)s AND c.checked_at = %(now)s AND c.status = 'suspect'
ON CONFLICT DO NOTHING
"""

# Where each meter's context starts: the slot of the reading ``history`` + 1 readings before its
# earliest unchecked one (that reading is the previous of the oldest reading the spike rule
# averages), however long ago; a meter with fewer earlier readings has them all. A probe of the
# (tenant, meter, slot) key per meter, never a scan of the meter's history.
_CONTEXT_SQL = """
SELECT b.meter_id, COALESCE((
    SELECT p.taken_at FROM metering_reading p
    WHERE p.tenant_id = %(tenant)s AND p.meter_id = b.meter_id AND p.taken_at < b.earliest
      AND p.taken_at >= %(plausible)s
    ORDER BY p.taken_at DESC LIMIT 1 OFFSET %(history)s
  ), %(plausible)s)
FROM ({bounds}) b
"""

# Checks made before this run whose reading has since got another reading before it (a reading
# stored late, for an earlier slot): each was judged against what is no longer its previous
# reading. Only a reading's immediately following one is affected, and only the checks after
# the meter's earliest unchecked reading are looked at. A verifier's decision (approved,
# replaced, a correction awaiting approval) stands; the checks ``implausible_time`` and
# ``cannot_check`` did not look at a previous reading.
_STALE_SQL = """
SELECT c.reading_id FROM verification_readingcheck c
JOIN ({bounds}) b ON b.meter_id = c.meter_id
WHERE c.tenant_id = %(tenant)s AND c.meter_id IN ({meters}) AND c.taken_at > b.earliest
  AND c.checked_at < %(now)s AND c.rules NOT IN ('implausible_time', 'cannot_check')
  AND (c.status = 'valid' OR (c.status = 'suspect' AND EXISTS (
    SELECT 1 FROM verification_verificationitem i
    WHERE i.tenant_id = c.tenant_id AND i.reading_id = c.reading_id AND i.state = 'open')))
  AND COALESCE(c.previous_reading_id, 0) <> COALESCE((
    SELECT p.id FROM metering_reading p
    WHERE p.tenant_id = c.tenant_id AND p.meter_id = c.meter_id AND p.taken_at < c.taken_at
      AND p.taken_at >= %(plausible)s
    ORDER BY p.taken_at DESC LIMIT 1), 0)
"""


# The advisory lock namespace of validation runs (the second key is the tenant id).
VALIDATION_LOCK = 10_001


@contextmanager
def tenant_validation_lock(tenant: Tenant) -> Iterator[None]:
    """Hold the tenant's validation lock (PostgreSQL, session level, so each chunk keeps its own
    transaction); elsewhere SQLite's single writer serialises the inserts."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [VALIDATION_LOCK, tenant.pk])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [VALIDATION_LOCK, tenant.pk])


def validate_readings(tenant: Tenant, meter_ids: list[int] | None = None) -> ValidationSummary:
    """Check every reading of the tenant (or of these meters) that has no check yet; safe to
    run any number of times at once (see the module's docstring)."""
    with tenant_validation_lock(tenant):
        return _validate(tenant, meter_ids)


def _validate(tenant: Tenant, meter_ids: list[int] | None) -> ValidationSummary:
    settings = VerificationSettings.for_tenant(tenant)
    pending = Reading.objects.filter(tenant=tenant, checks__isnull=True)
    if meter_ids is not None:
        pending = pending.filter(meter_id__in=meter_ids)
    now = timezone.now()
    summary = ValidationSummary()
    implausible = _implausible_time(now)
    _mark_suspect(tenant, pending.filter(implausible), Rule.IMPLAUSIBLE_TIME, now, summary)
    pending = pending.exclude(implausible)
    earliest = dict(
        pending.values_list("meter_id").annotate(earliest=Min("taken_at")).order_by("meter_id")
    )
    meters = sorted(earliest)
    for start in range(0, len(meters), METERS_PER_CHUNK):
        chunk = meters[start : start + METERS_PER_CHUNK]
        _check_in_parts(tenant, settings, chunk, earliest, pending, now, summary)
    if summary.checked:
        summary.superseded_estimates = supersede_estimates(tenant, now)
    return summary


def _implausible_time(now: datetime) -> Q:
    """Readings the rules cannot judge by their times: before 2000 or over a year ahead."""
    low, high = PLAUSIBLE_FROM, now + timedelta(days=366)
    return Q(taken_at__lt=low) | Q(taken_at__gt=high) | Q(read_at__lt=low) | Q(read_at__gt=high)


def _check_in_parts(
    tenant: Tenant,
    settings: VerificationSettings,
    meter_ids: list[int],
    earliest: dict[int, datetime],
    pending: QuerySet[Reading],
    now: datetime,
    summary: ValidationSummary,
) -> None:
    """Check a chunk of meters in one statement; if the database cannot compute it (a value
    out of its range), check each half apart, down to the meter whose readings it cannot
    judge: those are marked ``cannot_check`` and the rest of the tenant goes on."""
    try:
        _check_chunk(tenant, settings, meter_ids, earliest, now, summary)
    except DataError:
        if len(meter_ids) == 1:
            logger.exception(
                "validation could not judge meter %s of tenant %s", meter_ids[0], tenant.pk
            )
            mine = pending.filter(meter_id=meter_ids[0])
            _mark_suspect(tenant, mine, Rule.CANNOT_CHECK, now, summary)
            return
        half = len(meter_ids) // 2
        for part in (meter_ids[:half], meter_ids[half:]):
            _check_in_parts(tenant, settings, part, earliest, pending, now, summary)
        return
    _summarise(summary, tenant, meter_ids, now, min(earliest[meter] for meter in meter_ids))


def _mark_suspect(
    tenant: Tenant,
    readings: QuerySet[Reading],
    rule: str,
    now: datetime,
    summary: ValidationSummary,
) -> None:
    """Check these readings suspect by one rule and queue them for a verifier."""
    rows = list(readings.values_list("id", "meter_id", "meter__site_id", "taken_at"))
    if not rows:
        return
    with transaction.atomic():
        ReadingCheck.objects.bulk_create(
            [
                ReadingCheck(
                    tenant=tenant,
                    reading_id=reading_id,
                    meter_id=meter_id,
                    site_id=site_id,
                    taken_at=taken_at,
                    status=CheckStatus.SUSPECT,
                    rules=rule,
                    checked_at=now,
                )
                for reading_id, meter_id, site_id, taken_at in rows
            ],
            ignore_conflicts=True,
        )
        VerificationItem.objects.bulk_create(
            [
                VerificationItem(
                    tenant=tenant,
                    reading_id=reading_id,
                    meter_id=meter_id,
                    site_id=site_id,
                    rule=rule,
                    rules=rule,
                    created_at=now,
                )
                for reading_id, meter_id, site_id, _taken_at in rows
            ],
            ignore_conflicts=True,
        )
    summary.checked += len(rows)
    summary.suspect += len(rows)
    summary.by_rule[rule] += len(rows)


def _check_chunk(
    tenant: Tenant,
    settings: VerificationSettings,
    meter_ids: list[int],
    earliest: dict[int, datetime],
    now: datetime,
    summary: ValidationSummary,
) -> None:
    """Check the chunk's unchecked readings, each against its meter's readings before it (the
    previous one whatever its age, and the history the spike rule averages), then check again
    the checked readings that a reading stored late now precedes, and queue the suspect ones;
    all in one transaction."""
    ops = connection.ops
    number = float if connection.vendor == "sqlite" else (lambda value: value)  # SQLite binds
    # a Decimal as text, and text never compares below a number there.
    named = {
        "tenant": tenant.pk,
        "now": ops.adapt_datetimefield_value(now),
        "future": ops.adapt_datetimefield_value(
            now + timedelta(minutes=settings.future_tolerance_minutes)
        ),
        "spike_min": number(settings.spike_min_consumption),
        "spike_factor": number(settings.spike_factor),
        "zero_power": number(settings.zero_power_threshold),
        # SQLite adds in binary floating point: 1 + 3 + 2 + 4.05 - 10 is 0.0500000000000007.
        "tou_tolerance": number(settings.tou_tolerance)
        + (1e-9 if connection.vendor == "sqlite" else 0),
        "gap_hours": settings.gap_hours,
        "history": settings.history_readings,
        "zone": tenant.time_zone,
        "plausible": ops.adapt_datetimefield_value(PLAUSIBLE_FROM),
        "since": ops.adapt_datetimefield_value(min(earliest[meter] for meter in meter_ids)),
    }
    for index, meter_id in enumerate(meter_ids):
        named[f"e{index}"] = ops.adapt_datetimefield_value(earliest[meter_id])
    meters = ", ".join(str(int(meter_id)) for meter_id in meter_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CONTEXT_SQL.format(bounds=_bounds_sql(meter_ids, with_start=False)), named)
        starts = dict(cursor.fetchall())
        for index, meter_id in enumerate(meter_ids):
            named[f"c{index}"] = starts[meter_id]
        cursor.execute(_check_sql(meter_ids), named)
        bounds = _bounds_sql(meter_ids, with_start=False)
        cursor.execute(_STALE_SQL.format(bounds=bounds, meters=meters), named)
        stale = [reading_id for (reading_id,) in cursor.fetchall()]
        if stale:
            VerificationItem.objects.filter(
                tenant=tenant, reading_id__in=stale, state=ItemState.OPEN
            ).delete()
            ReadingCheck.objects.filter(tenant=tenant, reading_id__in=stale).delete()
            cursor.execute(_check_sql(meter_ids, only=stale), named)
            summary.rechecked += len(stale)
        cursor.execute(_QUEUE_SQL.format(first_rule=_first_rule("c.rules"), meters=meters), named)


def _summarise(
    summary: ValidationSummary,
    tenant: Tenant,
    meter_ids: list[int],
    now: datetime,
    since: datetime,
) -> None:
    """Add the counts of this run's checks of a chunk of meters, by status and by rule,
    aggregated in the database."""
    combinations = (
        ReadingCheck.objects.filter(
            tenant=tenant, meter_id__in=meter_ids, taken_at__gte=since, checked_at=now
        )
        .values_list("status", "rules")
        .annotate(count=Count("id"))
    )
    for status, rules, count in combinations:
        summary.checked += count
        summary.suspect += count if status == CheckStatus.SUSPECT else 0
        for rule in rules.split(","):
            if rule:
                summary.by_rule[rule] += count


def supersede_estimates(tenant: Tenant, now: datetime) -> list[int]:
    """An estimate stands in for a slot until a real reading of that slot checks valid: then
    the estimate is superseded by it. Returns the estimates superseded."""
    estimates = list(
        ReadingCorrection.objects.filter(
            tenant=tenant,
            kind=CorrectionKind.ESTIMATE,
            reading__isnull=True,
            state__in=[CorrectionState.PROPOSED, CorrectionState.APPROVED],
        )
    )
    if not estimates:
        return []
    fresh = {
        (meter_id, taken_at): reading_id
        for meter_id, taken_at, reading_id in ReadingCheck.objects.filter(
            tenant=tenant,
            checked_at=now,
            status=CheckStatus.VALID,
            meter_id__in={estimate.meter_id for estimate in estimates},
            taken_at__in={estimate.taken_at for estimate in estimates},
        ).values_list("meter_id", "taken_at", "reading_id")
    }
    superseded = []
    for estimate in estimates:
        reading_id = fresh.get((estimate.meter_id, estimate.taken_at))
        if reading_id is None:
            continue
        estimate.state = CorrectionState.SUPERSEDED
        estimate.superseded_by_id = reading_id
        estimate.save(update_fields=["state", "superseded_by"])
        superseded.append(estimate.pk)
    if superseded:
        record_audit(
            Principal.system(tenant, "verification"),
            AuditAction.ESTIMATES_SUPERSEDED,
            object_type="verification.readingcorrection",
            object_ids=superseded,
            after={"by_readings": [fresh[(e.meter_id, e.taken_at)] for e in estimates
                                   if e.pk in superseded]},
        )  # fmt: skip
    return superseded
