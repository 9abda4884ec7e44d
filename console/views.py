"""The staff console: server-rendered pages over the same services and API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import get_language

from billing.bills.documents import render_bill
from billing.models import Bill
from tenancy.models import Site
from tenancy.permissions import allowed_roles
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


@login_required
def bill_page(request: HttpRequest, bill_id: int) -> HttpResponse:
    """A bill as its customer sees it, for the staff who may see bills of its site; the same
    document as the PDF (``?as=pdf``), in the page's language or ``?lang=``."""
    principal = request.principal  # type: ignore[attr-defined]  # set by the middleware
    scope = principal.site_scope(allowed_roles("bills", "view"))
    if not scope.allows_any:
        raise PermissionDenied
    bill = get_object_or_404(Bill.objects.for_sites(scope.site_ids_or_none), pk=bill_id)
    language = request.GET.get("lang") or get_language() or "zh-hans"
    language = "en" if language.startswith("en") else "zh-hans"
    as_pdf = request.GET.get("as") == "pdf"
    body, content_type = render_bill(bill, language=language, as_pdf=as_pdf)
    return HttpResponse(body, content_type=content_type)
