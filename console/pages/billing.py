"""Console pages: tariffs, bill runs and bills."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from django.utils.translation import get_language

from billing.bills.documents import render_bill
from billing.models import Bill
from console.access import page
from console.nav import Entry

NAV: list[Entry] = []


@page("bills")
def bill_document(request: HttpRequest, bill_id: int) -> HttpResponse:
    """A bill as its customer sees it, for the staff who may see bills of its site; the same
    document as the PDF (``?as=pdf``), in the page's language or ``?lang=``."""
    scope = request.site_scope  # type: ignore[attr-defined]  # set by @page
    if not scope.allows_any:
        raise PermissionDenied
    bill = get_object_or_404(Bill.objects.for_sites(scope.site_ids_or_none), pk=bill_id)
    language = request.GET.get("lang") or get_language() or "zh-hans"
    language = "en" if language.startswith("en") else "zh-hans"
    as_pdf = request.GET.get("as") == "pdf"
    body, content_type = render_bill(bill, language=language, as_pdf=as_pdf)
    return HttpResponse(body, content_type=content_type)


urlpatterns: list[URLPattern] = [
    path("bills/<int:bill_id>/document/", bill_document, name="bill-document"),
    path("bills/<int:bill_id>/", bill_document, name="bill"),
]
