"""The staff console: server-rendered pages over the same services and API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenancy.models import Site
from tenancy.roles import Role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    principal = getattr(request, "principal", None)
    grants = []
    if principal is not None:
        site_names = {site.pk: str(site) for site in Site.objects.all()}
        grants = [
            {"role": Role(role).label, "site": site_names.get(site_id) if site_id else None}
            for role, site_id in sorted(principal.grants, key=lambda g: (g[0], g[1] or 0))
        ]
    return render(request, "console/home.html", {"principal": principal, "grants": grants})
