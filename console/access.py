"""Who may open a console page: the same permission matrix the API reads.

``@page("meters")`` lets in a member of staff of a tenant who holds, on at least one site, a
role the matrix lists for ``meters.view``; anyone else gets 403, and a visitor who is not
signed in goes to the login page. The sites on which the role is held are left on the request
(``request.site_scope``) for the view to narrow its queries to, so an object of a site outside
the grant answers 404 like one of another tenant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from tenancy.models import Site
from tenancy.permissions import allowed_roles
from tenancy.principal import Principal, SiteScope

View = Callable[..., HttpResponseBase]


def principal_of(request: HttpRequest) -> Principal | None:
    principal = getattr(request, "principal", None)
    if principal is None or principal.tenant is None:
        return None
    return principal


def scope_for(request: HttpRequest, resource: str, action: str = "view") -> SiteScope:
    """The sites on which the signed-in member of staff may take ``resource.action``."""
    principal = principal_of(request)
    if principal is None:
        return SiteScope(all_sites=False)
    return principal.site_scope(allowed_roles(resource, action))


def can(request: HttpRequest, resource: str, action: str = "view") -> bool:
    return scope_for(request, resource, action).allows_any


def require(request: HttpRequest, resource: str, action: str) -> SiteScope:
    """The scope of ``resource.action``, or 403 when the person holds no role for it."""
    scope = scope_for(request, resource, action)
    if not scope.allows_any:
        raise PermissionDenied
    return scope


def page(resource: str, action: str = "view") -> Callable[[View], View]:
    """A console page that needs ``resource.action`` on some site (403 otherwise)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            request.site_scope = require(request, resource, action)  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        wrapped.console_permission = (resource, action)  # type: ignore[attr-defined]
        return wrapped

    return decorate


def scoped(request: HttpRequest, queryset: Any) -> Any:
    """``queryset`` narrowed to the sites of the page's permission (``@page`` set the scope)."""
    scope: SiteScope = request.site_scope  # type: ignore[attr-defined]
    return queryset.for_sites(scope.site_ids_or_none)


def permitted_sites(request: HttpRequest | None) -> QuerySet[Site]:
    """The sites of the page's permission, by code: what a site select or filter offers (none
    without a request; django-filter calls a filter's ``queryset`` with the request)."""
    scope: SiteScope | None = getattr(request, "site_scope", None)
    if scope is None:
        return Site.objects.none()
    return Site.objects.for_sites(scope.site_ids_or_none).order_by("code")


def site_choices(request: HttpRequest) -> list[tuple[int, str]]:
    """``permitted_sites`` as a form select's choices, each labelled with its code and name."""
    return [(site.pk, str(site)) for site in permitted_sites(request)]


# For a filter's ``queryset`` (django-filter's stubs know only a queryset there).
SITES: Any = permitted_sites
