"""What the billing pages share: the permission of a tenant-wide write, the sites a person may
pick, and the error of a service refusal shown on the page that asked for it."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from console.access import principal_of, require
from console.lists import Listing
from tenancy.models import Site
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


def narrow_site_filter(listing: Listing, scope: SiteScope) -> None:
    """The list's site filter offers only the sites the person may see (the list itself is
    narrowed to them already)."""
    if listing.filters is not None and "site" in listing.filters.form.fields:
        field = listing.filters.form.fields["site"]
        field.queryset = Site.objects.for_sites(scope.site_ids_or_none).order_by("name")  # type: ignore[attr-defined]


def site_choices(scope: SiteScope) -> list[tuple[int, str]]:
    """The sites of the tenant this scope covers, by name, for a select."""
    sites = Site.objects.for_sites(scope.site_ids_or_none).order_by("name")
    return [(site.pk, site.name) for site in sites]
