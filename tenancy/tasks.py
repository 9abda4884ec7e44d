"""The Celery task base class, and the foundation's periodic jobs.

``TenantTask`` runs a task inside its tenant: a task that works for one tenant takes
``tenant_id`` as a keyword argument and the base class sets the current tenant (and its time
zone) before the body runs, so scoped queries inside work exactly as in a web request, and an
id of another tenant's row is simply not found. A task without ``tenant_id`` is a dispatcher:
it iterates the active tenants and works (or sends a task) for each inside ``use_tenant``.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.contrib.sessions.models import Session
from django.utils import timezone

from tenancy.context import use_tenant
from tenancy.models import Tenant


class TenantTask(DjangoTask):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tenant_id = kwargs.get("tenant_id")
        if tenant_id is None:
            return super().__call__(*args, **kwargs)
        tenant = Tenant.objects.get(pk=tenant_id)
        with use_tenant(tenant), timezone.override(tenant.zone):
            return super().__call__(*args, **kwargs)


@shared_task(name="tenancy.clear_expired_sessions")
def clear_expired_sessions() -> int:
    """Drop expired staff sessions (daily). Safe to run twice: it deletes only sessions past
    their expiry, which a second run no longer finds."""
    deleted, _by_model = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
