"""Billing tasks: thin wrappers over validation, bill runs and prepaid charging."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from billing.bills import price_bill_run
from billing.models import BillRun
from billing.validation import validate_readings
from tenancy.context import get_current_tenant
from tenancy.models import ActorKind, Tenant, User
from tenancy.principal import Principal


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


def _starter(run: BillRun) -> Principal:
    """The run is priced in the name of whoever started it."""
    if run.started_by_kind == ActorKind.STAFF and run.started_by_id:
        user = User.objects.filter(pk=run.started_by_id).first()
        if user is not None:
            return Principal.for_user(user)
    return Principal.system(get_current_tenant(), run.started_by_label)


@shared_task(name="billing.price_bill_run", acks_late=True)
def price_bill_run_task(tenant_id: int, run_id: int) -> dict:
    """Price a bill run from where it stopped (idempotent: a redelivered task resumes it)."""
    run = BillRun.objects.get(pk=run_id)
    run = price_bill_run(_starter(run), run_id)
    return {"state": run.state, "done": run.done, "total": run.total}
