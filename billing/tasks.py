"""Verification tasks: thin wrappers over ``billing.validation``."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from billing.validation import validate_readings
from tenancy.context import get_current_tenant
from tenancy.models import Tenant


@shared_task(name="billing.validate_readings", acks_late=True)
def validate_tenant_readings(tenant_id: int) -> dict:
    """Check every reading of the tenant that has no check yet (safe to run twice)."""
    summary = validate_readings(get_current_tenant())
    return {"checked": summary.checked, "suspect": summary.suspect}


@shared_task(name="billing.validate_all_readings")
def validate_all_readings() -> int:
    """The sweep: readings that arrived without a validation queued behind them."""
    checked = 0
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("id", flat=True):
        checked += validate_tenant_readings.apply(kwargs={"tenant_id": tenant_id}).get()["checked"]
    return checked


def queue_validation(tenant_id: int) -> None:
    """Validate the tenant's new readings once the transaction that stored them commits."""
    transaction.on_commit(lambda: validate_tenant_readings.delay(tenant_id=tenant_id))
