"""Helpers shared by the operators' management commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from tenancy.models import Tenant


def resolve_tenant(slug: object) -> Tenant:
    """The tenant named by ``--tenant``, or the only active one."""
    if slug:
        tenant = Tenant.objects.filter(slug=str(slug)).first()
        if tenant is None:
            raise CommandError(f"no tenant {slug!r}")
        return tenant
    tenants = list(Tenant.objects.filter(is_active=True)[:2])
    if len(tenants) != 1:
        raise CommandError("several tenants: name one with --tenant")
    return tenants[0]


def progress_bar(done: int, total: int, width: int = 30) -> str:
    share = done / total if total else 1.0
    filled = int(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({share:.0%})"
