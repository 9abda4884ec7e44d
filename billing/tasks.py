"""Billing tasks: thin wrappers over bill runs and prepaid charging."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from billing.models import BillingSettings, BillRun
from billing.prepaid import charge_prepaid_accounts
from billing.runs.services import issue_bill_run, price_bill_run
from tenancy.context import get_current_tenant
from tenancy.models import Tenant
from tenancy.principal import Principal, actor_for


def _actor(kind: str, actor_id: int | None, label: str) -> Principal:
    """A run is priced in the name of whoever started it, issued in the approver's."""
    return actor_for(get_current_tenant(), kind, actor_id, label)


@shared_task(name="billing.price_bill_run", acks_late=True)
def price_bill_run_task(tenant_id: int, run_id: int, shard: int | None = None) -> dict:
    """Price a bill run's shard from where it stopped. Safe to run twice: each chunk is priced
    under the locked shard row, which keeps a cursor and a priced flag, so a second run resumes
    after the last priced account or finds the shard done."""
    run = BillRun.objects.get(pk=run_id)
    actor = _actor(run.started_by_kind, run.started_by_id, run.started_by_label)
    run = price_bill_run(actor, run_id, shard=shard)
    return {"state": run.state, "done": run.done, "total": run.total}


@shared_task(name="billing.issue_bill_run", acks_late=True)
def issue_bill_run_task(tenant_id: int, run_id: int, shard: int | None = None) -> dict:
    """Issue an approved run's shard from where it stopped. Safe to run twice: only bills still
    in draft are taken, each chunk is issued and posted in one transaction under the locked
    shard row, and an issued shard is marked so, so a second run finds nothing left to issue."""
    run = BillRun.objects.get(pk=run_id)
    actor = _actor(run.approved_by_kind, run.approved_by_id, run.approved_by_label)
    run = issue_bill_run(actor, run_id, shard=shard)
    return {"state": run.state, "issued": run.issued}


@shared_task(name="billing.charge_prepaid", acks_late=True)
def charge_prepaid_task(tenant_id: int) -> dict:
    """Charge the tenant's prepaid accounts now. Safe to run twice: a charge is unique per
    account and opening reading and is taken with the account row locked, so a reading pair is
    charged once."""
    tenant = get_current_tenant()
    summary = charge_prepaid_accounts(Principal.system(tenant, "prepaid charging"), tenant)
    BillingSettings.stored_for_tenant(tenant)
    BillingSettings.objects.filter(tenant=tenant).update(prepaid_charged_at=timezone.now())
    return {"accounts": summary.accounts, "charged": summary.charged, "amount": str(summary.amount)}


@shared_task(name="billing.charge_prepaid_due")
def charge_prepaid_due() -> int:
    """The sweep: charge each tenant whose prepaid charging interval has passed. Safe to run
    twice: a tenant's charge may be queued twice, and ``charge_prepaid`` charges a reading pair
    once."""
    now = timezone.now()
    queued = 0
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("id", flat=True):
        settings = BillingSettings.for_tenant(Tenant.objects.get(pk=tenant_id))
        interval = timedelta(minutes=settings.prepaid_charge_interval_minutes)
        if settings.prepaid_charged_at is None or now - settings.prepaid_charged_at >= interval:
            charge_prepaid_task.delay(tenant_id=tenant_id)
            queued += 1
    return queued
