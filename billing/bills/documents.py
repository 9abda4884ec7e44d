"""Bills as documents: one template rendered as a page or as a PDF (WeasyPrint with the Noto
CJK font that ``make demo`` and ``.ci/run`` install), in Chinese or English, with the previous
and current readings, itemised lines with their tax, the amount due, the due date and a QR code
carrying the payment reference."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import segno
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from billing.models import Bill, BillKind, BillLine, BillState
from customers.models import Account, Premise
from metering.models import Meter
from tenancy.models import Tenant

REGISTER_NAMES = {
    "total": ("总", "Total"),
    "tou_spike": ("尖", "Spike"),
    "tou_peak": ("峰", "Peak"),
    "tou_flat": ("平", "Flat"),
    "tou_valley": ("谷", "Valley"),
}


def _units() -> dict[str, str]:
    return {"month": _("month"), "kVA": "kVA", "kW": "kW", "kWh": "kWh"}


def _readings(bill: Bill, english: bool) -> list[dict[str, Any]]:
    """Previous and current readings per meter (by its serial number) and register."""
    serials = dict(
        Meter.objects.filter(
            pk__in={entry.get("meter") for entry in [*bill.opening, *bill.closing]}
        ).values_list("pk", "serial_number")
    )
    rows = []
    for index, opening in enumerate(bill.opening):
        current = bill.closing[index] if index < len(bill.closing) else {}
        for register, names in REGISTER_NAMES.items():
            if register in opening or register in current:
                rows.append(
                    {
                        "meter": serials.get(opening.get("meter"), ""),
                        "register": names[1] if english else names[0],
                        "previous": opening.get(register, ""),
                        "current": current.get(register, ""),
                    }
                )
    return rows


def consumption_history(bill: Bill, count: int = 12) -> list[dict[str, Any]]:
    """The account's consumption of its last ``count`` billed periods up to the bill's own,
    oldest first, as Chinese bills print it: each period's bill in force (issued and not
    credited; the bill itself while it is a draft)."""
    bills = Bill.objects.filter(
        account_id=bill.account_id, period__lte=bill.period, state=BillState.ISSUED
    ).exclude(kind=BillKind.CREDIT_NOTE)
    credited = set(
        Bill.objects.filter(
            account_id=bill.account_id, kind=BillKind.CREDIT_NOTE, state=BillState.ISSUED
        ).values_list("corrects_id", flat=True)
    )
    by_period: dict[str, str] = {}
    for pk, period, used in bills.order_by("period", "pk").values_list(
        "pk", "period", "consumption"
    ):
        if pk not in credited:
            by_period[period] = used.get("total", "0")
    if bill.kind != BillKind.CREDIT_NOTE and bill.state == BillState.DRAFT:
        by_period[bill.period] = bill.consumption.get("total", "0")
    periods = sorted(by_period)[-count:]
    return [{"period": period, "kwh": Decimal(by_period[period])} for period in periods]


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
    rows = list(BillLine.objects.filter(bill=bill).order_by("position"))
    # A period split at a year end, a tariff change or a season: each line shows its days.
    split = len({(line.starts_on, line.ends_on) for line in rows}) > 1
    history = consumption_history(bill)
    peak = max((entry["kwh"] for entry in history), default=Decimal(0))
    for entry in history:
        entry["share"] = int(entry["kwh"] * 100 / peak) if peak > 0 else 0
    lines = [
        {
            "text": line.label_en if english else line.label,
            "span": (line.starts_on, line.ends_on) if split else None,
            "quantity": line.quantity.normalize() if line.quantity % 1 else int(line.quantity),
            "unit": _units().get(line.unit, line.unit),
            "unit_price": line.unit_price.normalize(),
            "amount": line.amount,
            "tax_rate": f"{(line.tax_rate * 100).normalize()}%",
            "tax": line.tax,
        }
        for line in rows
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
        "history": history,
        "qr_svg": payment_qr(tenant, bill) if bill.payment_reference else "",
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
