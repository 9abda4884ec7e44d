"""The audit trail: one helper that every write service calls.

``record_audit(actor, action, obj, before=…, after=…)`` appends an ``AuditEvent`` naming the
actor (staff user, API client, bank client, customer or system), the action from
``AuditAction``, the object (or the list of ids of a bulk action), the changed values before
and after, and the request id and address of the web request it ran in. Personal data is
recorded masked. Events are never changed or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

from tenancy.context import get_request_meta
from tenancy.models import AuditEvent, Site
from tenancy.principal import Principal

_M = TypeVar("_M", bound=models.Model)


class AuditAction(models.TextChoices):
    """What an audit event records; the label is what the console shows (the value, a stable
    code, is what is stored and what the API returns)."""

    LOGIN = "auth.login", _("Signed in")
    LOGOUT = "auth.logout", _("Signed out")
    SECOND_FACTOR_ENROLLED = "auth.second_factor_enrolled", _("Second factor enrolled")
    SECOND_FACTOR_RECOVERY_USED = (
        "auth.second_factor_recovery_used",
        _("Second-factor recovery code used"),
    )
    SECOND_FACTOR_RESET = "auth.second_factor_reset", _("Second factor reset")
    TENANT_UPDATED = "tenant.updated", _("Tenant settings changed")
    SITE_CREATED = "site.created", _("Site created")
    SITE_UPDATED = "site.updated", _("Site changed")
    SITE_DELETED = "site.deleted", _("Site deleted")
    TRANSFORMER_AREA_CREATED = "transformer_area.created", _("Transformer area created")
    TRANSFORMER_AREA_UPDATED = "transformer_area.updated", _("Transformer area changed")
    TRANSFORMER_AREA_DELETED = "transformer_area.deleted", _("Transformer area deleted")
    CALENDAR_DAY_CREATED = "calendar_day.created", _("Calendar day added")
    CALENDAR_DAY_UPDATED = "calendar_day.updated", _("Calendar day changed")
    CALENDAR_DAY_DELETED = "calendar_day.deleted", _("Calendar day removed")
    STAFF_CREATED = "staff.created", _("Staff member created")
    STAFF_UPDATED = "staff.updated", _("Staff member changed")
    STAFF_DEACTIVATED = "staff.deactivated", _("Staff member deactivated")
    STAFF_UNLOCKED = "staff.unlocked", _("Staff member unlocked")
    STAFF_PASSWORD_SET = "staff.password_set", _("Staff password set")
    API_CLIENT_CREATED = "api_client.created", _("API client created")
    API_CLIENT_UPDATED = "api_client.updated", _("API client changed")
    API_CLIENT_REVOKED = "api_client.revoked", _("API client revoked")
    API_CLIENT_TOKEN_ROTATED = "api_client.token_rotated", _("API client token rotated")
    CUSTOMER_REGISTERED = "customer.registered", _("Customer registered")
    CUSTOMER_UPDATED = "customer.updated", _("Customer changed")
    CUSTOMER_PII_REVEALED = "customer.pii_revealed", _("Customer's personal data revealed")
    PII_SEARCHED = "customer.pii_searched", _("Customers searched by personal data")
    ACCOUNT_OPENED = "account.opened", _("Account opened")
    ACCOUNT_UPDATED = "account.updated", _("Account changed")
    PREMISE_CREATED = "premise.created", _("Premise created")
    PREMISE_UPDATED = "premise.updated", _("Premise changed")
    PREMISE_DELETED = "premise.deleted", _("Premise deleted")
    CONTACT_ADDED = "contact.added", _("Contact added")
    CONTACT_UPDATED = "contact.updated", _("Contact changed")
    CONTACT_REMOVED = "contact.removed", _("Contact removed")
    CONTACT_CONFIRMED = "contact.confirmed", _("Contact confirmed")
    GATEWAY_CREATED = "gateway.created", _("Gateway created")
    GATEWAY_UPDATED = "gateway.updated", _("Gateway changed")
    GATEWAY_DELETED = "gateway.deleted", _("Gateway deleted")
    METER_REGISTERED = "meter.registered", _("Meter registered")
    METER_UPDATED = "meter.updated", _("Meter changed")
    METER_IMPORTED = "meter.imported", _("Meters imported")
    METER_REPLACED = "meter.replaced", _("Meter replaced")
    READING_ENTERED = "reading.entered", _("Reading entered by hand")
    READINGS_INGESTED = "reading.ingested", _("Readings received")
    METER_COMMAND_ISSUED = "meter_command.issued", _("Meter command issued")
    METER_COMMAND_MOVED = "meter_command.moved", _("Meter command progressed")
    READINGS_APPROVED = "reading.approved", _("Readings approved")
    CORRECTION_PROPOSED = "correction.proposed", _("Correction proposed")
    CORRECTION_APPROVED = "correction.approved", _("Correction approved")
    CORRECTION_REJECTED = "correction.rejected", _("Correction rejected")
    ESTIMATES_SUPERSEDED = "correction.superseded", _("Estimates superseded")
    PERIOD_COMPUTED = "period.computed", _("Period consumption computed")
    PERIOD_COMPUTATION_RESUMED = "period.computation_resumed", _("Period computation restarted")
    VERIFICATION_SETTINGS_UPDATED = (
        "verification_settings.updated",
        _("Verification settings changed"),
    )
    TARIFF_CREATED = "tariff.created", _("Tariff created")
    TARIFF_UPDATED = "tariff.updated", _("Tariff changed")
    TARIFF_VERSION_ADDED = "tariff.version_added", _("Tariff version added")
    TARIFF_VERSION_REMOVED = "tariff.version_removed", _("Tariff version removed")
    TARIFF_ASSIGNED = "tariff.assigned", _("Tariff assigned")
    TARIFF_ASSIGNMENT_ENDED = "tariff.assignment_ended", _("Tariff assignment ended")
    COMMON_AREA_CREATED = "common_area.created", _("Common area created")
    COMMON_AREA_UPDATED = "common_area.updated", _("Common area changed")
    BILLING_SETTINGS_UPDATED = "billing_settings.updated", _("Billing settings changed")
    BILL_RUN_STARTED = "bill_run.started", _("Bill run started")
    BILL_RUN_PRICED = "bill_run.priced", _("Bill run priced")
    BILL_RUN_APPROVED = "bill_run.approved", _("Bill run approved")
    BILL_RUN_RESUMED = "bill_run.resumed", _("Bill run restarted")
    BILLS_ISSUED = "bill.issued", _("Bills issued")
    BILL_VOIDED = "bill.voided", _("Bill voided")
    BILL_CREDITED = "bill.credited", _("Bill credited")
    BILL_REBILLED = "bill.rebilled", _("Bill rebilled")
    BILLS_REPRICED = "bill.repriced", _("Bills repriced")
    TARIFF_ASSIGNED_IN_BULK = "tariff.assigned_in_bulk", _("Tariff assigned in bulk")
    OPENING_BALANCES_IMPORTED = "opening_balances.imported", _("Opening balances imported")
    PREPAID_CHARGED = "prepaid.charged", _("Prepaid balance charged")
    INSPECTION_SAMPLE_DRAWN = "inspection.sample_drawn", _("Inspection sample drawn")
    INSPECTION_FINDING_RECORDED = "inspection.finding_recorded", _("Inspection finding recorded")
    INSPECTION_FINDING_ACKNOWLEDGED = (
        "inspection.finding_acknowledged",
        _("Inspection finding acknowledged"),
    )
    EXPORT_DOWNLOADED = "export.downloaded", _("Export downloaded")
    PAYMENT_POSTED = "payment.posted", _("Payment posted")
    PAYMENT_REVERSED = "payment.reversed", _("Payment reversed")
    PAYMENT_REJECTION_REPORTED = "payment.rejection_reported", _("Payment rejection reported")
    RECEIPT_PRINTED = "receipt.printed", _("Receipt printed (the original)")
    RECEIPT_REPRINTED = "receipt.reprinted", _("Receipt reprinted")
    SHIFT_OPENED = "shift.opened", _("Cashier shift opened")
    SHIFT_COUNTED = "shift.counted", _("Cashier shift counted")
    SHIFT_DIFFERENCE_APPROVED = "shift.difference_approved", _("Shift difference approved")
    SHIFT_COUNT_REJECTED = "shift.count_rejected", _("Shift count rejected")
    CASH_HANDED_OVER = "cash.handed_over", _("Cash handed over to the bank")
    CASH_APPROVAL_GRANTED = "cash_approval.granted", _("Holiday cash approved")
    COLLECTION_POLICY_UPDATED = "collection_policy.updated", _("Collection policy updated")
    DEPOSIT_POLICY_CHANGED = "deposit_policy.changed", _("Deposit policy changed")
    DEPOSIT_TAKEN = "deposit.taken", _("Deposit taken")
    DEPOSIT_RECEIPT_PRINTED = "deposit.receipt_printed", _("Deposit receipt printed (the original)")
    DEPOSIT_RECEIPT_REPRINTED = "deposit.receipt_reprinted", _("Deposit receipt reprinted")
    REFUND_REQUESTED = "refund.requested", _("Refund requested")
    REFUND_APPROVED = "refund.approved", _("Refund approved")
    REFUND_REJECTED = "refund.rejected", _("Refund rejected")
    REFUND_PAID = "refund.paid", _("Refund paid")
    REFUND_BANK_ACCOUNT_REVEALED = (
        "refund.bank_account_revealed",
        _("Refund's bank account revealed"),
    )
    ACCOUNT_CLOSING_STARTED = "account.closing_started", _("Account closing started")
    ACCOUNT_CLOSED = "account.closed", _("Account closed")
    ACCOUNT_CLOSING_PREVIEWED = "account.closing_previewed", _("Account closing previewed")
    ACCOUNT_CLOSING_CANCELLED = "account.closing_cancelled", _("Account closing cancelled")
    VOUCHER_BATCH_GENERATED = "voucher_batch.generated", _("Recharge card batch generated")
    VOUCHER_PINS_DOWNLOADED = "voucher_batch.pins_downloaded", _("Recharge card PINs downloaded")
    VOUCHER_PINS_REFUSED = (
        "voucher_batch.pins_refused",
        _("Recharge card PINs asked for again and refused"),
    )
    VOUCHER_BATCH_RELEASED = "voucher_batch.released", _("Recharge card batch released")
    VOUCHER_BATCH_VOIDED = "voucher_batch.voided", _("Recharge card batch voided")
    VOUCHER_CARD_VOIDED = "voucher_card.voided", _("Recharge card voided")
    VOUCHER_CARD_UNLOCKED = "voucher_card.unlocked", _("Recharge card unlocked")
    VOUCHER_CARD_REDEEMED = "voucher_card.redeemed", _("Recharge card redeemed")
    VOUCHER_CARD_REOPENED = (
        "voucher_card.reopened",
        _("Recharge card redeemable again (its payment reversed)"),
    )
    VOUCHER_CARDS_EXPIRED = "voucher_card.expired", _("Recharge cards expired")


def action_label(action: str) -> str:
    """The label of a stored action code; an unknown code (from a retired action) as it is."""
    try:
        return str(AuditAction(action).label)
    except ValueError:
        return action


def object_type_label(object_type: str) -> str:
    """The name of a stored object type (``billing.billrun``) as people read it, from its
    model's verbose name; a type no model has any more as it is."""
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        return object_type
    return str(model._meta.verbose_name)


# Never recorded, even masked: secrets and derived search hashes.
_SKIPPED_FIELDS = {"tenant", "password", "key_hash"}


def site_id_of(obj: models.Model) -> int | None:
    """The site an object belongs to, following the model's ``site_path``."""
    if isinstance(obj, Site):
        return obj.pk
    path = getattr(obj, "site_path", None)
    if not path:
        return None
    *hops, last = path.split("__")
    current: Any = obj
    for hop in hops:
        current = getattr(current, hop, None)
        if current is None:
            return None
    return getattr(current, f"{last}_id", None)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_snapshot(obj: models.Model, field_names: Iterable[str] | None = None) -> dict[str, Any]:
    """The object's field values as JSON, personal data masked, secrets left out."""
    wanted = set(field_names) if field_names is not None else None
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in _SKIPPED_FIELDS or field.name.endswith("_hash"):
            continue
        if wanted is not None and field.name not in wanted and field.attname not in wanted:
            continue
        raw = getattr(obj, field.attname)
        mask = getattr(field, "mask", None)
        values[field.attname] = mask(raw) if mask is not None and raw else raw
    return _jsonable(values)


def audit_event(
    actor: Principal,
    action: AuditAction | str,
    obj: models.Model | None = None,
    *,
    object_type: str | None = None,
    object_ids: Sequence[Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    site_id: int | None = None,
) -> AuditEvent:
    """The event ``record_audit`` writes, built and not saved: a hot path writes it inside a
    statement of its own with ``audit_event_insert``."""
    if actor.tenant is None:
        raise ValueError("An audit event needs the actor's tenant.")
    meta = get_request_meta()
    return AuditEvent(
        tenant=actor.tenant,
        site_id=site_id if site_id is not None else (site_id_of(obj) if obj else None),
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        action=AuditAction(action).value,
        object_type=object_type or (obj._meta.label_lower if obj is not None else ""),
        object_id=str(obj.pk) if obj is not None else "",
        object_ids=_jsonable(list(object_ids)) if object_ids is not None else None,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        request_id=meta.request_id if meta else "",
        ip=meta.ip if meta else None,
    )


def record_audit(
    actor: Principal,
    action: AuditAction | str,
    obj: models.Model | None = None,
    *,
    object_type: str | None = None,
    object_ids: Sequence[Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    site_id: int | None = None,
) -> AuditEvent:
    event = audit_event(
        actor, action, obj, object_type=object_type, object_ids=object_ids, before=before,
        after=after, site_id=site_id,
    )  # fmt: skip
    event.save()
    return event


def audit_event_insert(event: AuditEvent, after_sql: str, source: str) -> tuple[str, list[Any]]:
    """``INSERT … SELECT`` of an unsaved event (``audit_event``), to run as one part of a
    statement (a CTE) that reads ``source``: its ``after`` is the event's merged with the JSON
    object the SQL expression ``after_sql`` gives from ``source``'s row. Returns the SQL and its
    parameters. The event is written once, with the statement, or not at all."""
    table = AuditEvent._meta.db_table
    after = json.dumps(event.after or {}, cls=DjangoJSONEncoder)
    sql = (
        f"INSERT INTO {table} (tenant_id, site_id, actor_kind, actor_id, actor_label, action, "  # noqa: S608
        "object_type, object_id, object_ids, before, after, request_id, ip, created_at) "
        "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, "
        f"%s::jsonb || {after_sql}, %s, %s::inet, %s FROM {source}"
    )
    params = [
        event.tenant_id, event.site_id, event.actor_kind, event.actor_id, event.actor_label,
        event.action, event.object_type, event.object_id,
        None if event.object_ids is None else json.dumps(event.object_ids),
        None if event.before is None else json.dumps(event.before),
        after, event.request_id, event.ip, event.created_at,
    ]  # fmt: skip
    return sql, params


def create_with_audit(actor: Principal, model: type[_M], action: AuditAction, **fields: Any) -> _M:
    """Validate, insert and audit one row (the common shape of a create action)."""
    with transaction.atomic():
        obj = model(tenant=actor.tenant, **fields)
        obj.full_clean()
        obj.save()
        record_audit(actor, action, obj, after=audit_snapshot(obj))
    return obj


def update_with_audit(
    actor: Principal, obj: _M, changes: dict[str, Any], action: AuditAction
) -> _M:
    """Apply ``changes``, validate, save only those fields and audit what really changed."""
    with transaction.atomic():
        obj = type(obj)._base_manager.select_for_update().get(pk=obj.pk)
        changed = {name: value for name, value in changes.items() if getattr(obj, name) != value}
        if not changed:
            return obj
        before = audit_snapshot(obj, changed)
        for name, value in changed.items():
            setattr(obj, name, value)
        obj.full_clean()
        update_fields = [obj._meta.get_field(name).name for name in changed]
        obj.save(update_fields=update_fields)
        record_audit(actor, action, obj, before=before, after=audit_snapshot(obj, changed))
    return obj


def delete_with_audit(actor: Principal, obj: models.Model, action: AuditAction) -> None:
    with transaction.atomic():
        before = audit_snapshot(obj)
        site_id = site_id_of(obj)
        object_id = obj.pk
        obj.delete()
        obj.pk = object_id
        record_audit(actor, action, obj, before=before, site_id=site_id)
