"""A receipt's page: its three copies (客户联, 存根联, 记账联) as the receipt document prints them,
on one sheet or one at a time, with the PDF beside it. A reprint (重打) is recorded and audited
by ``reprint_receipt`` and the copies printed from it carry its number; a receipt whose payment
was reversed prints 作废."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from collection.documents import receipt_context, render_receipt
from collection.models import Receipt, ReceiptPrint
from collection.services.receipts import reprint_receipt
from console.access import page, scoped
from console.pages.billing.common import actor
from console.pages.customers._common import may

# The copies in the order the document prints them, by the name a link asks for.
COPIES = ("customer", "stub", "bookkeeping")


def _scoped_receipt(request: HttpRequest, receipt_id: int) -> Receipt:
    return get_object_or_404(
        scoped(request, Receipt.objects.select_related("payment")), pk=receipt_id
    )


def _asked_reprint(request: HttpRequest, receipt: Receipt) -> ReceiptPrint | None:
    """The reprint a link names (``?reprint=``): its copies are marked with its number."""
    asked = request.GET.get("reprint", "")
    if not asked.isdigit() or len(asked) > 18:
        return None
    return ReceiptPrint.objects.filter(receipt=receipt, pk=int(asked)).first()


def _language() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh-hans"


@page("receipts")
def receipt(request: HttpRequest, receipt_id: int) -> HttpResponse:
    found = _scoped_receipt(request, receipt_id)
    reprint = _asked_reprint(request, found)
    context = receipt_context(found, _language(), reprint)
    chosen = request.GET.get("copy", "")
    if chosen not in COPIES:
        chosen = ""
    labelled = list(zip(COPIES, context["copies"], strict=True))
    context.update(
        {
            "copies": [label for key, label in labelled if chosen in ("", key)],
            "copy_choices": labelled,
            "chosen": chosen,
            "may_reprint": may(request, "receipts", "reprint", found.site_id),
            "reprints": list(ReceiptPrint.objects.filter(receipt=found).order_by("copy")),
            "sees_payment": may(request, "payments", "view", found.site_id),
            "query": _query(chosen, reprint),
        }
    )
    return render(request, "console/collection/receipt.html", context)


def _query(chosen: str, reprint: ReceiptPrint | None) -> str:
    parts = [f"copy={chosen}"] if chosen else []
    if reprint is not None:
        parts.append(f"reprint={reprint.pk}")
    return "&".join(parts)


@page("receipts")
def receipt_document(request: HttpRequest, receipt_id: int) -> HttpResponse:
    """The receipt document (the API's): HTML, or the PDF with ``?as=pdf``; a reprint's copies
    with ``?reprint=``."""
    found = _scoped_receipt(request, receipt_id)
    language = request.GET.get("lang") or _language()
    language = "en" if language.startswith("en") else "zh-hans"
    as_pdf = request.GET.get("as") == "pdf"
    body, content_type = render_receipt(
        found, language=language, as_pdf=as_pdf, reprint=_asked_reprint(request, found)
    )
    response = HttpResponse(body, content_type=content_type)
    if as_pdf:
        response["Content-Disposition"] = f'inline; filename="receipt-{found.display_number}.pdf"'
    return response


@page("receipts", "reprint")
def receipt_reprint(request: HttpRequest, receipt_id: int) -> HttpResponseBase:
    """Record a reprint (POST only: each one is numbered and audited) and show its copies."""
    found = _scoped_receipt(request, receipt_id)
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    printed = reprint_receipt(actor(request), found)
    messages.success(
        request,
        _("Reprint no. %(number)s of receipt %(receipt)s recorded: print the marked copies.")
        % {"number": printed.copy, "receipt": found.display_number},
    )
    chosen = request.POST.get("copy", "")
    url = reverse("console:receipt", args=[found.pk])
    return redirect(f"{url}?{_query(chosen if chosen in COPIES else '', printed)}")
