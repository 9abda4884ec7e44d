"""Verification tasks: thin wrappers over the validation of readings. The read stage starts
``verification.validate_readings`` by name after it stores readings (``tenancy.handover``)."""

from __future__ import annotations

from celery import shared_task

from tenancy.context import get_current_tenant
from tenancy.handover import VALIDATE_READINGS
from tenancy.models import Tenant
from verification.computations import run_period_computation
from verification.rules import validate_readings


@shared_task(name=VALIDATE_READINGS, acks_late=True)
def validate_tenant_readings(tenant_id: int) -> dict:
    """Check every reading of the tenant that has no check yet. Safe to run twice: a check is
    unique per reading and only readings without one are checked, so a second run finds
    nothing left."""
    summary = validate_readings(get_current_tenant())
    return {"checked": summary.checked, "suspect": summary.suspect}


@shared_task(name="verification.validate_all_readings")
def validate_all_readings() -> int:
    """The sweep: readings that arrived without a validation queued behind them. Safe to run
    twice: it checks only readings that have no check yet."""
    checked = 0
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("id", flat=True):
        checked += validate_tenant_readings.apply(kwargs={"tenant_id": tenant_id}).get()["checked"]
    return checked


@shared_task(name="verification.compute_period", acks_late=True)
def compute_period_task(tenant_id: int, computation_id: int) -> dict:
    """Compute a site's period in the background (``verification.computations``)."""
    computation = run_period_computation(computation_id)
    return {"state": computation.state, "done": computation.done, "total": computation.total}
