"""Collection tasks: thin wrappers over the services (recharge cards' expiry)."""

from __future__ import annotations

from celery import shared_task

from collection.services.vouchers import expire_cards
from tenancy.context import get_current_tenant
from tenancy.models import Tenant
from tenancy.principal import Principal


@shared_task(name="collection.expire_vouchers", acks_late=True)
def expire_vouchers_task(tenant_id: int) -> dict:
    """Expire the tenant's recharge cards past their last day. Safe to run twice: a card
    expires once, under its batch's lock, and the posting's source is the batch and the day."""
    tenant = get_current_tenant()
    summary = expire_cards(Principal.system(tenant, "recharge card expiry"))
    return {"batches": summary.batches, "cards": summary.cards, "amount": str(summary.amount)}


@shared_task(name="collection.expire_vouchers_due")
def expire_vouchers_due() -> int:
    """The daily sweep: one expiry task per active tenant."""
    tenant_ids = list(Tenant.objects.filter(is_active=True).values_list("id", flat=True))
    for tenant_id in tenant_ids:
        expire_vouchers_task.delay(tenant_id=tenant_id)
    return len(tenant_ids)
