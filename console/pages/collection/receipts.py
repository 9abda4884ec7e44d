"""Receipt pages: a payment's receipt and a deposit's receipt (押金收据, ``Y…``), each with its
three copies (客户联, 存根联, 记账联) as the receipt document prints them, on one sheet or one at
a time, with the PDF beside it.

Printing follows ``collection.services.receipts``: the first print is the original, recorded
and audited by one click ("print the original", which then opens the browser's print dialog);
every later one is an audited reprint marked 重打 with its number. The page and the PDF show
unmarked copies only when they name a print (``?print=``) that the viewer recorded a moment
ago; otherwise every copy is stamped view-only (仅供查看). A receipt whose payment was reversed
prints 作废. The two kinds of receipt share these views through a ``ReceiptKind``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from collection.documents import deposit_receipt_context, receipt_context, render_document
from collection.models import Deposit, DocumentPrint, Receipt
from collection.services.errors import PaymentConflict
from collection.services.receipts import (
    print_deposit_receipt,
    print_receipt,
    printed_for,
    reprint_deposit_receipt,
    reprint_receipt,
)
from console.access import page, scoped
from console.pages.billing.common import actor
from console.pages.customers._common import may
from tenancy.principal import Principal

# The copies in the order the document prints them, by the name a link asks for.
COPIES = ("customer", "stub", "bookkeeping")


@dataclass(frozen=True)
class ReceiptKind:
    """What differs between a payment's receipt and a deposit's: the permission resource, the
    rows, the document's context, the print actions and the page's URL names."""

    resource: str
    queryset: Callable[[], models.QuerySet[Any]]
    prints: Callable[[Any], models.QuerySet[DocumentPrint]]
    number: Callable[[Any], str]
    context: Callable[[Any, str, Any], dict[str, Any]]
    print_original: Callable[[Principal, Any], DocumentPrint]
    reprint: Callable[[Principal, Any], DocumentPrint]
    url: str  # the page's URL name; its document, print and reprint add "-document" and so on
    links: Callable[[HttpRequest, Any], list[tuple[str, str]]]


def _payment_links(request: HttpRequest, receipt: Receipt) -> list[tuple[str, str]]:
    links = []
    if may(request, "payments", "view", receipt.site_id):
        links.append((_("The payment"), reverse("console:payment", args=[receipt.payment_id])))
    links.append(
        (_("Back to the counter"), reverse("console:counter-account",
                                           args=[receipt.payment.account_id]))
    )  # fmt: skip
    return links


def _deposit_links(request: HttpRequest, deposit: Deposit) -> list[tuple[str, str]]:
    url = reverse("console:deposits")
    return [(_("The account's deposits"), f"{url}?account={deposit.account.number}")]


PAYMENT_RECEIPT = ReceiptKind(
    resource="receipts",
    queryset=lambda: Receipt.objects.select_related("payment"),
    prints=lambda receipt: receipt.prints.all(),
    number=lambda receipt: receipt.display_number,
    context=receipt_context,
    print_original=print_receipt,
    reprint=reprint_receipt,
    url="console:receipt",
    links=_payment_links,
)
DEPOSIT_RECEIPT = ReceiptKind(
    resource="deposits",
    queryset=lambda: Deposit.objects.select_related("account"),
    prints=lambda deposit: deposit.prints.all(),
    number=lambda deposit: deposit.display_receipt_number,
    context=deposit_receipt_context,
    print_original=print_deposit_receipt,
    reprint=reprint_deposit_receipt,
    url="console:deposit-receipt",
    links=_deposit_links,
)


def _language() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh-hans"


def _query(chosen: str, printed: DocumentPrint | None, *, now: bool = False) -> str:
    parts = [f"copy={chosen}"] if chosen else []
    if printed is not None:
        parts.append(f"print={printed.pk}")
    if now:
        parts.append("now=1")
    return "&".join(parts)


def _show(request: HttpRequest, kind: ReceiptKind, document_id: int) -> HttpResponse:
    found = get_object_or_404(scoped(request, kind.queryset()), pk=document_id)
    prints = list(kind.prints(found).order_by("copy"))
    printed = printed_for(kind.prints(found), request.GET.get("print"), actor(request))
    context = kind.context(found, _language(), printed)
    chosen = request.GET.get("copy", "")
    if chosen not in COPIES:
        chosen = ""
    labelled = list(zip(COPIES, context["copies"], strict=True))
    may_print = may(request, kind.resource, "print", found.site_id)
    may_reprint = may(request, kind.resource, "reprint", found.site_id)
    context.update(
        {
            "copies": [label for key, label in labelled if chosen in ("", key)],
            "copy_choices": labelled,
            "chosen": chosen,
            "prints": prints,
            "print_url": reverse(f"{kind.url}-print", args=[found.pk])
            if may_print and not prints
            else "",
            "reprint_url": reverse(f"{kind.url}-reprint", args=[found.pk])
            if may_reprint and prints
            else "",
            "document_url": reverse(f"{kind.url}-document", args=[found.pk]),
            "print_query": f"print={printed.pk}" if printed is not None else "",
            "query": _query(chosen, printed),
            "print_now": printed is not None and request.GET.get("now") == "1",
            "links": kind.links(request, found),
        }
    )
    return render(request, "console/collection/receipt.html", context)


def _document(request: HttpRequest, kind: ReceiptKind, document_id: int) -> HttpResponse:
    """The document (the API's): HTML, or the PDF with ``?as=pdf``; a recorded print's copies
    with ``?print=`` (by the rule of ``printed_for``), view-only otherwise."""
    found = get_object_or_404(scoped(request, kind.queryset()), pk=document_id)
    language = request.GET.get("lang") or _language()
    language = "en" if language.startswith("en") else "zh-hans"
    as_pdf = request.GET.get("as") == "pdf"
    printed = printed_for(kind.prints(found), request.GET.get("print"), actor(request))
    body, content_type = render_document(kind.context(found, language, printed), as_pdf=as_pdf)
    response = HttpResponse(body, content_type=content_type)
    if as_pdf:
        filename = f"receipt-{kind.number(found)}.pdf"
        response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _record(
    request: HttpRequest, kind: ReceiptKind, document_id: int, *, original: bool
) -> HttpResponseBase:
    """Record the original or a reprint (POST only: each is audited), then show its copies
    and open the print dialog; a refusal (printed already, not printed yet) is said on the
    page."""
    found = get_object_or_404(scoped(request, kind.queryset()), pk=document_id)
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    chosen = request.POST.get("copy", "")
    chosen = chosen if chosen in COPIES else ""
    url = reverse(kind.url, args=[found.pk])
    try:
        printed = (kind.print_original if original else kind.reprint)(actor(request), found)
    except PaymentConflict as exc:
        messages.error(request, exc.messages[0])
        return redirect(f"{url}?{_query(chosen, None)}")
    if printed.is_original:
        messages.success(
            request,
            _("Original of receipt %(receipt)s recorded: print it now.")
            % {"receipt": kind.number(found)},
        )
    else:
        messages.success(
            request,
            _("Reprint no. %(number)s of receipt %(receipt)s recorded: print the marked copies.")
            % {"number": printed.copy, "receipt": kind.number(found)},
        )
    return redirect(f"{url}?{_query(chosen, printed, now=True)}")


@page("receipts")
def receipt(request: HttpRequest, receipt_id: int) -> HttpResponse:
    return _show(request, PAYMENT_RECEIPT, receipt_id)


@page("receipts")
def receipt_document(request: HttpRequest, receipt_id: int) -> HttpResponse:
    return _document(request, PAYMENT_RECEIPT, receipt_id)


@page("receipts", "print")
def receipt_print(request: HttpRequest, receipt_id: int) -> HttpResponseBase:
    return _record(request, PAYMENT_RECEIPT, receipt_id, original=True)


@page("receipts", "reprint")
def receipt_reprint(request: HttpRequest, receipt_id: int) -> HttpResponseBase:
    return _record(request, PAYMENT_RECEIPT, receipt_id, original=False)


@page("deposits")
def deposit_receipt(request: HttpRequest, deposit_id: int) -> HttpResponse:
    return _show(request, DEPOSIT_RECEIPT, deposit_id)


@page("deposits")
def deposit_receipt_document(request: HttpRequest, deposit_id: int) -> HttpResponse:
    return _document(request, DEPOSIT_RECEIPT, deposit_id)


@page("deposits", "print")
def deposit_receipt_print(request: HttpRequest, deposit_id: int) -> HttpResponseBase:
    return _record(request, DEPOSIT_RECEIPT, deposit_id, original=True)


@page("deposits", "reprint")
def deposit_receipt_reprint(request: HttpRequest, deposit_id: int) -> HttpResponseBase:
    return _record(request, DEPOSIT_RECEIPT, deposit_id, original=False)
