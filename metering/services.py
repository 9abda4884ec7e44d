"""Write actions of the read stage: gateways, meters (one by one, by CSV, replaced), readings
(manual, pushed and polled) and meter commands."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Account
from metering.meter_profiles import ProfileError, all_profiles, get_profile
from metering.models import (
    OPEN_COMMAND_STATES,
    CommandKind,
    CommandState,
    Gateway,
    Meter,
    MeterCommand,
    MeterReplacement,
    MeterStatus,
    PollRound,
    Reading,
    ReadingSource,
)
from metering.readings import StoreOutcome, reading_row, reading_time_errors, store_readings
from tenancy.audit import (
    AuditAction,
    audit_snapshot,
    create_with_audit,
    delete_with_audit,
    record_audit,
    update_with_audit,
)
from tenancy.context import get_current_tenant
from tenancy.handover import EXECUTE_GATEWAY_COMMANDS, VALIDATE_READINGS, send_task_after_commit
from tenancy.models import Site, TransformerArea
from tenancy.principal import Principal

COMMAND_LIFETIME = timedelta(hours=24)

# --- gateways ---------------------------------------------------------------------------------


def create_gateway(actor: Principal, **fields: Any) -> Gateway:
    return create_with_audit(actor, Gateway, AuditAction.GATEWAY_CREATED, **fields)


def update_gateway(actor: Principal, gateway: Gateway, changes: dict[str, Any]) -> Gateway:
    if "site" in changes and changes["site"] != gateway.site and gateway.meters.exists():
        raise ValidationError({"site": _("A gateway with meters cannot move to another site.")})
    return update_with_audit(actor, gateway, changes, AuditAction.GATEWAY_UPDATED)


def delete_gateway(actor: Principal, gateway: Gateway) -> None:
    """A gateway with meters (or history) is in use and stays (409)."""
    delete_with_audit(actor, gateway, AuditAction.GATEWAY_DELETED)


# --- meters -----------------------------------------------------------------------------------


def check_meter(fields: dict[str, Any]) -> dict[str, Any]:
    """Cross-field rules of a meter; returns the fields completed (utility from the profile)."""
    errors: dict[str, str] = {}
    try:
        profile = get_profile(fields["profile"])
    except ProfileError:
        errors["profile"] = _("Unknown meter profile. Known: %(names)s") % {
            "names": ", ".join(sorted(all_profiles()))
        }
        raise ValidationError(errors) from None
    fields.setdefault("utility", profile.utility)
    if fields["utility"] != profile.utility:
        errors["utility"] = _("The profile reads %(utility)s.") % {"utility": profile.utility}
    site: Site = fields["site"]
    gateway: Gateway | None = fields.get("gateway")
    if gateway is not None:
        if gateway.site_id != site.pk:
            errors["gateway"] = _("The gateway belongs to another site.")
        if fields.get("unit_id") is None:
            errors["unit_id"] = _("A meter on a gateway needs its Modbus unit id.")
    account: Account | None = fields.get("account")
    if account is not None:
        if account.site_id != site.pk:
            errors["account"] = _("The account belongs to another site.")
        if account.utility != fields["utility"]:
            errors["account"] = _("The account is for another utility.")
        fields.setdefault("premise", account.premise)
    premise = fields.get("premise")
    if premise is not None and premise.site_id != site.pk:
        errors["premise"] = _("The premise belongs to another site.")
    area: TransformerArea | None = fields.get("master_of")
    if area is not None and area.site_id != site.pk:
        errors["master_of"] = _("The transformer area belongs to another site.")
    if errors:
        raise ValidationError(errors)
    return fields


def _check_unit_free(fields: dict[str, Any], meter_id: int | None) -> None:
    gateway = fields.get("gateway")
    if gateway is None:
        return
    clash = Meter.objects.filter(gateway=gateway, unit_id=fields["unit_id"]).exclude(
        status=MeterStatus.REMOVED
    )
    if meter_id is not None:
        clash = clash.exclude(pk=meter_id)
    if clash.exists():
        raise ValidationError({"unit_id": _("Another meter answers at this unit id.")})


def register_meter(actor: Principal, **fields: Any) -> Meter:
    fields = check_meter(fields)
    with transaction.atomic():
        _check_unit_free(fields, None)
        return create_with_audit(actor, Meter, AuditAction.METER_REGISTERED, **fields)


def update_meter(actor: Principal, meter: Meter, changes: dict[str, Any]) -> Meter:
    if meter.status == MeterStatus.REMOVED:
        raise ValidationError(_("A removed meter is history; register a new one."))
    merged = {
        name: changes.get(name, getattr(meter, name))
        for name in ("profile", "utility", "site", "gateway", "unit_id", "account", "premise")
    } | {"master_of": changes.get("master_of", meter.master_of)}
    check_meter(merged)
    if changes.get("status") == MeterStatus.REMOVED:
        changes.setdefault("removed_on", timezone.localdate())
    with transaction.atomic():
        _check_unit_free(merged, meter.pk)
        return update_with_audit(actor, meter, changes, AuditAction.METER_UPDATED)


CSV_COLUMNS = [
    "serial_number",
    "profile",
    "site",
    "gateway",
    "unit_id",
    "account",
    "ct_ratio",
    "pt_ratio",
    "wrap_value",
    "installed_on",
    "master_of",
]


@dataclass
class CsvRowError:
    line: int
    errors: dict[str, list[str]]


def _csv_decimal(raw: str, name: str, errors: dict[str, list[str]]) -> Decimal | None:
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        errors.setdefault(name, []).append(_("Not a number: %(value)s") % {"value": raw})
        return None
    if not value.is_finite() or value <= 0:
        errors.setdefault(name, []).append(_("Must be above 0."))
    return value


def _serial_number_errors(serial_number: str) -> dict[str, list[str]]:
    """The model field's rules for a serial number (its characters, its length): a CSV import
    and a replacement create meters without the model's validation."""
    try:
        Meter._meta.get_field("serial_number").run_validators(serial_number)
    except ValidationError as exc:
        return {"serial_number": list(exc.messages)}
    return {}


def _csv_row_fields(row: dict[str, str], lookups: dict[str, dict[str, Any]]) -> tuple[dict, dict]:
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {
        "serial_number": row.get("serial_number", "").strip(),
        "profile": row.get("profile", "").strip(),
    }
    if not fields["serial_number"]:
        errors["serial_number"] = [_("Required.")]
    else:
        errors |= _serial_number_errors(fields["serial_number"])
    for column, key in (
        ("site", "sites"),
        ("gateway", "gateways"),
        ("account", "accounts"),
        ("master_of", "areas"),
    ):
        raw = row.get(column, "").strip()
        if not raw:
            continue
        found = lookups[key].get(raw)
        if found is None:
            errors[column] = [_("Unknown: %(value)s") % {"value": raw}]
        fields[column] = found
    if "site" not in fields or fields.get("site") is None:
        errors.setdefault("site", [_("Required: the site code.")])
    raw_unit = row.get("unit_id", "").strip()
    if raw_unit:
        if raw_unit.isdigit() and 1 <= int(raw_unit) <= 247:
            fields["unit_id"] = int(raw_unit)
        else:
            errors["unit_id"] = [_("A unit id is 1 to 247.")]
    for column in ("ct_ratio", "pt_ratio", "wrap_value"):
        value = _csv_decimal(row.get(column, "").strip(), column, errors)
        if value is not None:
            fields[column] = value
    raw_date = row.get("installed_on", "").strip()
    if raw_date:
        try:
            fields["installed_on"] = date.fromisoformat(raw_date)
        except ValueError:
            errors["installed_on"] = [_("A date is YYYY-MM-DD.")]
    return fields, errors


def import_meters_csv(
    actor: Principal, text: str, site_ids: frozenset[int] | None = None
) -> list[Meter]:
    """Register every meter of a CSV file, or none: any bad row refuses the whole file, and the
    error lists every bad row with its line number. ``site_ids`` limits the sites (and their
    gateways, accounts and areas) the file may name; ``None`` allows all of the tenant's."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [
        c for c in ("serial_number", "profile", "site") if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise ValidationError({"file": _("Missing columns: %(c)s") % {"c": ", ".join(missing)}})
    unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
    if unknown:
        raise ValidationError({"file": _("Unknown columns: %(c)s") % {"c": ", ".join(unknown)}})
    lookups: dict[str, dict[str, Any]] = {
        "sites": {site.code: site for site in Site.objects.for_sites(site_ids)},
        "gateways": {g.name: g for g in Gateway.objects.for_sites(site_ids)},
        "accounts": {a.number: a for a in Account.objects.for_sites(site_ids)},
        "areas": {area.code: area for area in TransformerArea.objects.for_sites(site_ids)},
    }
    existing = set(Meter.objects.values_list("serial_number", flat=True))
    taken_units: set[tuple[Any, Any]] = set(
        Meter.objects.exclude(status=MeterStatus.REMOVED).values_list("gateway_id", "unit_id")
    )
    rows: list[dict[str, Any]] = []
    problems: list[CsvRowError] = []
    seen_serials: set[str | None] = set()
    for line, row in enumerate(reader, start=2):
        fields, errors = _csv_row_fields(row, lookups)
        if not errors:
            try:
                fields = check_meter(fields)
            except ValidationError as exc:
                errors = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
        serial = fields.get("serial_number")
        if serial in existing or serial in seen_serials:
            errors.setdefault("serial_number", []).append(_("This serial number is registered."))
        unit_key = (getattr(fields.get("gateway"), "pk", None), fields.get("unit_id"))
        if unit_key[0] is not None and unit_key in taken_units:
            errors.setdefault("unit_id", []).append(_("Another meter answers at this unit id."))
        taken_units.add(unit_key)
        seen_serials.add(serial)
        if errors:
            problems.append(CsvRowError(line, errors))
        else:
            rows.append(fields)
    if problems:
        raise ValidationError(
            {
                "rows": [
                    _("line %(line)s: %(field)s: %(errors)s")
                    % {"line": p.line, "field": field_name, "errors": " ".join(messages)}
                    for p in problems
                    for field_name, messages in p.errors.items()
                ]
            }
        )
    if not rows:
        raise ValidationError({"file": _("The file has no meters.")})
    with transaction.atomic():
        meters = Meter.objects.bulk_create(Meter(tenant=actor.tenant, **fields) for fields in rows)
        record_audit(
            actor,
            AuditAction.METER_IMPORTED,
            object_type="metering.meter",
            object_ids=[meter.pk for meter in meters],
            after={"count": len(meters)},
        )
    return meters


def _manual_reading(
    actor: Principal, meter: Meter, taken_at: datetime, values: dict[str, Any]
) -> Reading:
    assert actor.tenant is not None
    errors = reading_time_errors(actor.tenant, taken_at)
    if errors:
        raise ValidationError({"replaced_at": errors["taken_at"]})
    reading = Reading(
        tenant=actor.tenant,
        meter=meter,
        taken_at=taken_at,
        read_at=taken_at,
        source=ReadingSource.MANUAL,
        entered_by_id=actor.id,
        **values,
    )
    reading.full_clean(exclude=["tenant", "meter"])
    reading.save()
    return reading


def replace_meter(
    actor: Principal,
    old_meter: Meter,
    *,
    new_serial_number: str,
    replaced_at: datetime,
    final_reading: dict[str, Any],
    first_reading: dict[str, Any],
    reason: str,
    new_profile: str | None = None,
) -> MeterReplacement:
    """Take a meter out and put a new one in its place: the new meter takes the old one's bus
    address, account and premise; the final reading of the old and the first of the new are
    recorded at the same moment and linked, so consumption joins across the swap."""
    if old_meter.status == MeterStatus.REMOVED:
        raise ValidationError(_("This meter has already been removed."))
    if errors := _serial_number_errors(new_serial_number):
        raise ValidationError({"new_serial_number": errors["serial_number"]})
    with transaction.atomic():
        old_meter = Meter.objects.select_for_update().get(pk=old_meter.pk)
        if Meter.objects.filter(serial_number=new_serial_number).exists():
            raise ValidationError({"new_serial_number": _("This serial number is registered.")})
        final = _manual_reading(actor, old_meter, replaced_at, final_reading)
        old_meter.status = MeterStatus.REMOVED
        old_meter.removed_on = timezone.localdate(replaced_at)
        old_meter.save(update_fields=["status", "removed_on"])
        new_meter = Meter(
            tenant=actor.tenant,
            site=old_meter.site,
            serial_number=new_serial_number,
            profile=new_profile or old_meter.profile,
            utility=old_meter.utility,
            gateway=old_meter.gateway,
            unit_id=old_meter.unit_id,
            ct_ratio=old_meter.ct_ratio,
            pt_ratio=old_meter.pt_ratio,
            account=old_meter.account,
            premise=old_meter.premise,
            master_of=old_meter.master_of,
            installed_on=timezone.localdate(replaced_at),
        )
        check_meter(
            {"profile": new_meter.profile, "utility": new_meter.utility, "site": new_meter.site}
        )
        new_meter.full_clean(exclude=["tenant"])
        new_meter.save()
        first = _manual_reading(actor, new_meter, replaced_at, first_reading)
        replacement = MeterReplacement.objects.create(
            tenant=get_current_tenant(),
            old_meter=old_meter,
            new_meter=new_meter,
            replaced_at=replaced_at,
            old_final_reading=final,
            new_first_reading=first,
            reason=reason,
        )
        record_audit(
            actor,
            AuditAction.METER_REPLACED,
            replacement,
            after={
                "old_meter": old_meter.pk,
                "new_meter": new_meter.pk,
                "final_total": str(final.total),
                "first_total": str(first.total),
                "reason": reason,
            },
        )
    return replacement


# --- readings ---------------------------------------------------------------------------------


def record_manual_reading(
    actor: Principal, meter: Meter, taken_at: datetime, values: dict[str, Any]
) -> Reading:
    """A reading taken by hand where remote reading failed. A second one for the same slot
    with other values is refused (409) and recorded as a meter event."""
    assert actor.tenant is not None
    errors = reading_time_errors(actor.tenant, taken_at)
    if errors:
        raise ValidationError(errors)
    row = reading_row(meter, taken_at, taken_at, ReadingSource.MANUAL, values, actor.id)
    outcome = store_readings(actor.tenant, [row])[0]
    if outcome.status == "conflict":
        raise IntegrityError("conflicting reading for this slot")
    reading = Reading.objects.get(meter=meter, taken_at=taken_at)
    if outcome.status == "stored":
        record_audit(actor, AuditAction.READING_ENTERED, reading, after=audit_snapshot(reading))
        send_task_after_commit(VALIDATE_READINGS, {"tenant_id": actor.tenant.pk})
    return reading


@dataclass
class IngestItem:
    """One pushed reading, already parsed: a known meter, or the reason it is refused."""

    index: int
    meter: Meter | None = None
    taken_at: datetime | None = None
    read_at: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def ingest_readings(actor: Principal, items: Sequence[IngestItem]) -> list[dict[str, Any]]:
    """Store a batch pushed by an edge gateway. Valid items are kept and invalid ones reported,
    each with its index: stored, duplicate (the same values again: nothing written), conflict
    (other values for a slot already read: refused and recorded as a meter event), invalid."""
    results: list[dict[str, Any] | None] = [None] * len(items)
    rows, positions = [], []
    for item in items:
        if item.errors or item.meter is None:
            results[item.index] = {"index": item.index, "status": "invalid", "errors": item.errors}
            continue
        rows.append(
            reading_row(
                item.meter,
                item.taken_at,  # type: ignore[arg-type]  # set on every item without errors
                item.read_at,  # type: ignore[arg-type]
                ReadingSource.PUSHED,
                item.values,
                None,
            )
        )
        positions.append(item.index)
    assert actor.tenant is not None
    outcomes: list[StoreOutcome] = store_readings(actor.tenant, rows) if rows else []
    for index, outcome in zip(positions, outcomes, strict=True):
        results[index] = {"index": index, "status": outcome.status}
    stored = [o.reading_id for o in outcomes if o.status == "stored"]
    if stored:
        send_task_after_commit(VALIDATE_READINGS, {"tenant_id": actor.tenant.pk})
        record_audit(
            actor,
            AuditAction.READINGS_INGESTED,
            object_type="metering.reading",
            object_ids=stored,
            after={"stored": len(stored), "items": len(items)},
        )
    return [result for result in results if result is not None]


# --- meter commands ---------------------------------------------------------------------------

# The transitions a command may take; anything else is a bug and refused.
COMMAND_TRANSITIONS = {
    CommandState.PENDING: {CommandState.SENT, CommandState.EXPIRED, CommandState.FAILED},
    CommandState.SENT: {
        CommandState.CONFIRMED,
        CommandState.FAILED,
        CommandState.PENDING,
        CommandState.EXPIRED,
    },
    CommandState.CONFIRMED: set(),
    CommandState.FAILED: set(),
    CommandState.EXPIRED: set(),
}


def issue_command(
    actor: Principal,
    meter: Meter,
    *,
    kind: str,
    reason: str,
    setpoint: str = "",
    value: Decimal | None = None,
    lifetime: timedelta = COMMAND_LIFETIME,
) -> MeterCommand:
    """Ask the bridge to trip or close a meter's relay, or write a setpoint. At most one open
    command per meter; the bridge sends it between reads on the meter's bus and confirms it by
    reading the register back."""
    profile = get_profile(meter.profile)
    if meter.gateway_id is None or meter.status != MeterStatus.ACTIVE:
        raise ValidationError(_("Only an active meter on a gateway can be commanded."))
    if kind in (CommandKind.RELAY_TRIP, CommandKind.RELAY_CLOSE) and profile.relay is None:
        raise ValidationError({"kind": _("This meter model has no relay.")})
    if kind == CommandKind.SETPOINT:
        spec = profile.setpoint(setpoint)
        if spec is None:
            raise ValidationError({"setpoint": _("This meter model has no such setpoint.")})
        if (
            value is None
            or (spec.minimum is not None and value < spec.minimum)
            or (spec.maximum is not None and value > spec.maximum)
        ):
            raise ValidationError({"value": _("The value is outside the setpoint's range.")})
    with transaction.atomic():
        if MeterCommand.objects.filter(meter=meter, state__in=OPEN_COMMAND_STATES).exists():
            raise ValidationError(_("This meter already has an open command."), code="open_command")
        command = MeterCommand(
            tenant=actor.tenant,
            meter=meter,
            kind=kind,
            setpoint=setpoint,
            value=value,
            reason=reason,
            requested_by_kind=actor.kind,
            requested_by_id=actor.id,
            requested_by_label=actor.label,
            expires_at=timezone.now() + lifetime,
        )
        command.full_clean(exclude=["tenant", "meter"])
        command.save()
        record_audit(
            actor,
            AuditAction.METER_COMMAND_ISSUED,
            command,
            after=audit_snapshot(
                command, ["meter", "kind", "setpoint", "value", "reason", "expires_at"]
            ),
        )
        assert actor.tenant is not None
        send_task_after_commit(
            EXECUTE_GATEWAY_COMMANDS,
            {"tenant_id": actor.tenant.pk, "gateway_id": meter.gateway_id},
            queue="polling",
        )
    return command


def move_command(
    actor: Principal,
    command: MeterCommand,
    state: str,
    *,
    error: str = "",
    attempts: int | None = None,
) -> MeterCommand:
    """Move a command to ``state`` along the transition table, audited."""
    with transaction.atomic():
        command = MeterCommand.objects.select_for_update().get(pk=command.pk)
        if state not in COMMAND_TRANSITIONS[CommandState(command.state)]:
            raise ValidationError(
                _("A command cannot go from %(old)s to %(new)s.")
                % {"old": command.state, "new": state}
            )
        before = {"state": command.state, "attempts": command.attempts}
        now = timezone.now()
        command.state = state
        command.last_error = error[:300]
        if attempts is not None:
            command.attempts = attempts
        if state == CommandState.SENT:
            command.sent_at = now
        if state in (CommandState.CONFIRMED, CommandState.FAILED, CommandState.EXPIRED):
            command.completed_at = now
        command.save()
        record_audit(
            actor,
            AuditAction.METER_COMMAND_MOVED,
            command,
            before=before,
            after={"state": state, "attempts": command.attempts, "error": command.last_error},
        )
    return command


def expire_commands(actor: Principal, now: datetime | None = None) -> int:
    """Open commands past their lifetime expire (the bridge never reached the meter)."""
    now = now or timezone.now()
    stale = MeterCommand.objects.filter(state__in=OPEN_COMMAND_STATES, expires_at__lte=now)
    count = 0
    for command in stale:
        move_command(actor, command, CommandState.EXPIRED, error="expired before it was confirmed")
        count += 1
    return count


# --- completeness -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Completeness:
    """How many meter reads a site's polling rounds were due and how many answered."""

    due: int
    read: int

    @property
    def ratio(self) -> float | None:
        return self.read / self.due if self.due else None


def completeness_by_site(
    site_ids: Iterable[int] | None, since: datetime, until: datetime
) -> dict[int, Completeness]:
    """Reading completeness of each site over the rounds whose slot falls in [since, until):
    the meters its gateways were due to read and those that answered, summed over the rounds
    (the meter readers' KPI over a period). Read from the rounds' counts, not the readings, so
    a month of a large site costs one indexed aggregate. ``None`` means every site."""
    rounds = PollRound.objects.filter(slot__gte=since, slot__lt=until)
    if site_ids is not None:
        rounds = rounds.filter(site_id__in=list(site_ids))
    totals = rounds.values("site_id").annotate(due=Sum("meters_total"), read=Sum("meters_read"))
    return {
        row["site_id"]: Completeness(due=row["due"] or 0, read=row["read"] or 0)
        for row in totals.order_by()
    }
