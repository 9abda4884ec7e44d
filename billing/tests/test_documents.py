"""Bills as documents: the PDF's text (read back with pdftotext) and the console page."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal

import pytest

from billing.bills.documents import render_bill
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.usefixtures("in_tenant_a")


def pdf_text(pdf: bytes) -> str:
    assert shutil.which("pdftotext"), "poppler-utils is installed by make test and .ci/run"
    done = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    )
    return done.stdout.decode()


def test_the_pdf_bill_shows_the_charge_the_amount_due_and_the_due_date(world: World) -> None:
    bill = world.a.bill()
    pdf, content_type = render_bill(bill, language="zh-hans")
    assert isinstance(pdf, bytes)
    assert content_type == "application/pdf" and pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    # 200 kWh at 0.5000 = 100.00, tax 100.00 − 100.00/1.13 = 11.50.
    assert bill.total == Decimal("100.00")
    assert "电费" in text
    assert "应缴金额" in text and "100.00" in text
    assert bill.due_date is not None and bill.due_date.isoformat() in text
    assert bill.number in text and "11.50" in text


def test_the_english_pdf_reads_in_english(world: World) -> None:
    bill = world.a.bill()
    text = pdf_text(render_bill(bill, language="en")[0])  # type: ignore[arg-type]
    assert "Electricity bill" in text and "Amount due" in text and "100.00" in text


def test_the_console_page_shows_the_bill_to_staff_of_its_site_only(world: World) -> None:
    bill = world.a.bill()
    document = f"/console/bills/{bill.pk}/document/"
    alice = world.client_for(world.alice).get(document)
    assert alice.status_code == 200 and bill.number in alice.content.decode()
    pdf = world.client_for(world.alice).get(document, {"as": "pdf"})
    assert pdf["Content-Type"] == "application/pdf"
    assert world.client_for(world.mallory).get(document).status_code == 404
    assert world.client_for(world.carol).get(document).status_code == 404
    reader = world.a.staff((Role.METER_READER, None))
    assert world.client_for(reader).get(document).status_code == 403


def test_the_api_serves_the_pdf(world: World) -> None:
    bill = world.a.bill()
    response = world.client_for(world.bob).get(f"/api/v1/bills/{bill.pk}/document/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "电费" in pdf_text(response.content)


@pytest.mark.parametrize("query", [{"lang": "fr"}, {"as": "docx"}])
def test_an_unknown_language_or_format_is_a_clear_400(world: World, query: dict[str, str]) -> None:
    bill = world.a.bill()
    response = world.client_for(world.bob).get(f"/api/v1/bills/{bill.pk}/document/", query)
    assert response.status_code == 400 and "error" in response.json()
