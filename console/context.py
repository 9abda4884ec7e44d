"""What every console page's layout needs: the navigation this person may open, the tenant and
the sites in view, and the tenant's time zone (times on pages are shown in it)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, lazy
from django.utils.translation import gettext as _

from console.access import principal_of
from console.nav import navigation
from tenancy.models import Site


def _sites_in_view(request: HttpRequest) -> str:
    """The sites this person's grants cover, as the layout shows them."""
    principal = principal_of(request)
    if principal is None:
        return ""
    site_ids = {site_id for _role, site_id in principal.grants}
    if None in site_ids:
        return str(_("All sites"))
    listed = [site_id for site_id in site_ids if site_id is not None]
    names = Site.objects.filter(pk__in=listed).order_by("name").values_list("name", flat=True)
    return "、".join(names) or str(_("No sites"))


def console(request: HttpRequest) -> dict[str, Any]:
    principal = principal_of(request)
    if principal is None:
        return {}
    return {
        "console_nav": SimpleLazyObject(lambda: navigation(request)),
        "console_tenant": principal.tenant,
        "console_sites": lazy(_sites_in_view, str)(request),
    }
