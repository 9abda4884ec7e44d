"""The console's periodic job: the dashboards' summaries of every active tenant."""

from __future__ import annotations

from celery import shared_task

from console.summaries import refresh_summaries
from tenancy.models import Tenant


@shared_task(name="console.refresh_tenant_dashboards")
def refresh_tenant_dashboards(tenant_id: int) -> int:
    return refresh_summaries()


@shared_task(name="console.refresh_dashboards")
def refresh_dashboards() -> int:
    """Every active tenant's summaries, one tenant at a time; returns the sites refreshed."""
    sites = 0
    for tenant_id in Tenant.objects.filter(is_active=True).values_list("id", flat=True):
        sites += refresh_tenant_dashboards.apply(kwargs={"tenant_id": tenant_id}).get()
    return sites
