"""The console's first page: the person's roles and the dashboard of each role they hold."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from console.access import principal_of
from console.nav import Entry
from tenancy.models import Site
from tenancy.roles import Role

NAV: list[Entry] = [Entry("overview", _("Dashboard"), "console:home", "tenant")]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    grants = []
    if principal is not None:
        site_names = {site.pk: str(site) for site in Site.objects.all()}
        grants = [
            {"role": Role(role).label, "site": site_names.get(site_id) if site_id else None}
            for role, site_id in sorted(principal.grants, key=lambda g: (g[0], g[1] or 0))
        ]
    return render(request, "console/home.html", {"principal": principal, "grants": grants})


urlpatterns: list[URLPattern] = [path("", home, name="home")]
