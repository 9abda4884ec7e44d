"""Bills as documents: one template rendered as a page or as a PDF (WeasyPrint with the Noto
CJK font that ``make demo`` and ``.ci/run`` install), in Chinese or English, with the previous
and current readings, itemised lines with their tax, the amount due, the due date and a QR code
carrying the payment reference."""

from __future__ import annotations

from typing import Any

import segno
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from billing.models import Bill, BillKind, BillLine
from customers.models import Account, Premise
from tenancy.models import Tenant

REGISTER_NAMES = {
    "total": ("总", "Total"),
    "tou_spike": ("尖", "Spike"),
    "tou_peak": ("峰", "Peak"),
    "tou_flat": ("平", "Flat"),
    "tou_valley": ("谷", "Valley"),
}


def _readings(bill: Bill, english: bool) -> list[dict[str, Any]]:
    rows = []
    for index, opening in enumerate(bill.opening):
        current = bill.closing[index] if index < len(bill.closing) else {}
        for register, names in REGISTER_NAMES.items():
            if register in opening or register in current:
                rows.append(
                    {
                        "meter": opening.get("meter"),
                        "register": names[1] if english else names[0],
                        "previous": opening.get(register, ""),
                        "current": current.get(register, ""),
                    }
                )
    return rows


def payment_qr(tenant: Tenant, bill: Bill) -> str:
    """An inline SVG QR code a payment app or the portal reads: tenant, reference, amount."""
    payload = f"BARSPAY:{tenant.slug}:{bill.payment_reference}:{bill.total}"
    return segno.make(payload, error="m").svg_inline(scale=3)


def bill_context(bill: Bill, language: str) -> dict[str, Any]:
    english = language.startswith("en")
    tenant = Tenant.objects.get(pk=bill.tenant_id)
    account = Account.objects.get(pk=bill.account_id)
    premise = Premise.objects.get(pk=account.premise_id)
    titles: dict[str, str] = {
        BillKind.BILL: _("Electricity bill") if bill.utility == "electricity" else _("Water bill"),
        BillKind.CREDIT_NOTE: _("Credit note"),
        BillKind.REBILL: _("Corrected bill"),
    }
    lines = [
        {
            "text": line.label_en if english else line.label,
            "quantity": line.quantity.normalize() if line.quantity % 1 else int(line.quantity),
            "unit": line.unit,
            "unit_price": line.unit_price.normalize(),
            "amount": line.amount,
            "tax_rate": f"{(line.tax_rate * 100).normalize()}%",
            "tax": line.tax,
        }
        for line in BillLine.objects.filter(bill=bill).order_by("position")
    ]
    return {
        "language": language,
        "bill": bill,
        "tenant": tenant,
        "account": account,
        "premise": str(premise),
        "title": titles[bill.kind],
        "lines": lines,
        "readings": _readings(bill, english),
        "qr_svg": payment_qr(tenant, bill),
    }


def render_bill(
    bill: Bill, *, language: str = "zh-hans", as_pdf: bool = True
) -> tuple[bytes | str, str]:
    """The bill as HTML (a page) or as PDF bytes, and its content type."""
    with translation.override(language):
        html = render_to_string("billing/bill_document.html", bill_context(bill, language))
    if not as_pdf:
        return html, "text/html; charset=utf-8"
    from weasyprint import HTML  # imported here: loading Pango is only needed for PDFs

    return HTML(string=html).write_pdf(), "application/pdf"
