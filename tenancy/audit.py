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

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from tenancy.context import get_request_meta
from tenancy.models import AuditEvent, Site
from tenancy.principal import Principal

_M = TypeVar("_M", bound=models.Model)


class AuditAction(models.TextChoices):
    LOGIN = "auth.login"
    LOGOUT = "auth.logout"
    SECOND_FACTOR_ENROLLED = "auth.second_factor_enrolled"
    SECOND_FACTOR_RECOVERY_USED = "auth.second_factor_recovery_used"
    SECOND_FACTOR_RESET = "auth.second_factor_reset"
    TENANT_UPDATED = "tenant.updated"
    SITE_CREATED = "site.created"
    SITE_UPDATED = "site.updated"
    SITE_DELETED = "site.deleted"
    TRANSFORMER_AREA_CREATED = "transformer_area.created"
    TRANSFORMER_AREA_UPDATED = "transformer_area.updated"
    TRANSFORMER_AREA_DELETED = "transformer_area.deleted"
    CALENDAR_DAY_CREATED = "calendar_day.created"
    CALENDAR_DAY_UPDATED = "calendar_day.updated"
    CALENDAR_DAY_DELETED = "calendar_day.deleted"
    STAFF_CREATED = "staff.created"
    STAFF_UPDATED = "staff.updated"
    STAFF_DEACTIVATED = "staff.deactivated"
    STAFF_UNLOCKED = "staff.unlocked"
    STAFF_PASSWORD_SET = "staff.password_set"  # noqa: S105
    API_CLIENT_CREATED = "api_client.created"
    API_CLIENT_UPDATED = "api_client.updated"
    API_CLIENT_REVOKED = "api_client.revoked"
    API_CLIENT_TOKEN_ROTATED = "api_client.token_rotated"  # noqa: S105
    CUSTOMER_REGISTERED = "customer.registered"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_PII_REVEALED = "customer.pii_revealed"
    PII_SEARCHED = "customer.pii_searched"
    ACCOUNT_OPENED = "account.opened"
    ACCOUNT_UPDATED = "account.updated"
    PREMISE_CREATED = "premise.created"
    PREMISE_UPDATED = "premise.updated"
    PREMISE_DELETED = "premise.deleted"
    CONTACT_ADDED = "contact.added"
    CONTACT_UPDATED = "contact.updated"
    CONTACT_REMOVED = "contact.removed"
    CONTACT_CONFIRMED = "contact.confirmed"
    GATEWAY_CREATED = "gateway.created"
    GATEWAY_UPDATED = "gateway.updated"
    GATEWAY_DELETED = "gateway.deleted"
    METER_REGISTERED = "meter.registered"
    METER_UPDATED = "meter.updated"
    METER_IMPORTED = "meter.imported"
    METER_REPLACED = "meter.replaced"
    READING_ENTERED = "reading.entered"
    READINGS_INGESTED = "reading.ingested"
    METER_COMMAND_ISSUED = "meter_command.issued"
    METER_COMMAND_MOVED = "meter_command.moved"
    READINGS_APPROVED = "reading.approved"
    CORRECTION_PROPOSED = "correction.proposed"
    CORRECTION_APPROVED = "correction.approved"
    CORRECTION_REJECTED = "correction.rejected"
    ESTIMATES_SUPERSEDED = "correction.superseded"
    PERIOD_COMPUTED = "period.computed"
    VERIFICATION_SETTINGS_UPDATED = "verification_settings.updated"
    TARIFF_CREATED = "tariff.created"
    TARIFF_UPDATED = "tariff.updated"
    TARIFF_VERSION_ADDED = "tariff.version_added"
    TARIFF_ASSIGNED = "tariff.assigned"
    TARIFF_ASSIGNMENT_ENDED = "tariff.assignment_ended"
    COMMON_AREA_CREATED = "common_area.created"
    COMMON_AREA_UPDATED = "common_area.updated"
    BILLING_SETTINGS_UPDATED = "billing_settings.updated"
    BILL_RUN_STARTED = "bill_run.started"
    BILL_RUN_PRICED = "bill_run.priced"
    BILL_RUN_APPROVED = "bill_run.approved"
    BILLS_ISSUED = "bill.issued"
    BILL_VOIDED = "bill.voided"
    BILL_CREDITED = "bill.credited"
    BILL_REBILLED = "bill.rebilled"
    BILLS_REPRICED = "bill.repriced"
    TARIFF_ASSIGNED_IN_BULK = "tariff.assigned_in_bulk"
    OPENING_BALANCES_IMPORTED = "opening_balances.imported"
    PREPAID_CHARGED = "prepaid.charged"
    INSPECTION_SAMPLE_DRAWN = "inspection.sample_drawn"
    INSPECTION_FINDING_RECORDED = "inspection.finding_recorded"
    INSPECTION_FINDING_ACKNOWLEDGED = "inspection.finding_acknowledged"
    EXPORT_DOWNLOADED = "export.downloaded"


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
    if actor.tenant is None:
        raise ValueError("An audit event needs the actor's tenant.")
    meta = get_request_meta()
    event = AuditEvent(
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
    event.save()
    return event


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
