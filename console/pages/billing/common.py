"""What the billing pages share: the acting person and the permission of a tenant-wide write."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from console.access import principal_of, require
from tenancy.principal import Principal, SiteScope


def actor(request: HttpRequest) -> Principal:
    """The acting member of staff (``@page`` let only staff of a tenant in)."""
    principal = principal_of(request)
    if principal is None:
        raise PermissionDenied
    return principal


def require_tenant_wide(request: HttpRequest, resource: str, action: str) -> SiteScope:
    """A write to something that belongs to no site (a tariff, an assignment, the settings)
    needs the role for every site, as the API's matrix permission says: 403 otherwise."""
    scope = require(request, resource, action)
    if not scope.all_sites:
        raise PermissionDenied
    return scope


def may_write_tenant_wide(request: HttpRequest, resource: str, action: str) -> bool:
    try:
        require_tenant_wide(request, resource, action)
    except PermissionDenied:
        return False
    return True
