"""Receipts: numbered per tenant without gaps (a failed or rolled-back payment takes none), the
three copies as a PDF in Chinese or English, reprints marked and audited, the void mark after a
reversal, and the amount in words. The original's print and the view-only mark:
``test_receipt_prints``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from billing.tests.test_documents import pdf_text
from collection.documents import amount_in_words, render_receipt
from collection.models import Payment, Receipt, ReceiptPrint
from collection.services.payments import post_payment
from collection.services.receipts import print_receipt, reprint_receipt
from collection.services.reversal import reverse_payment
from collection.tests.test_allocation import pay
from customers.models import Account
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, World, unique


def numbers() -> list[int]:
    return list(Receipt.objects.order_by("number").values_list("number", flat=True))


def test_receipt_numbers_run_without_gaps_per_tenant(world: World) -> None:
    with world.a.active():
        for _ in range(3):
            world.a.payment()
        assert numbers() == [1, 2, 3]
    with world.b.active():
        world.b.payment()
        assert numbers() == [1]


def test_a_refused_payment_takes_no_number(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    a.payment()
    closed = a.account()
    Account.objects.filter(pk=closed.pk).update(status="closed", closed_on=date(2026, 6, 1))
    with pytest.raises(ValidationError):
        a.payment(account=Account.objects.get(pk=closed.pk))
    a.payment()
    assert numbers() == [1, 2]


def test_a_payment_rolled_back_after_its_number_gives_the_number_back(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    a.payment()
    account = a.account()
    with pytest.raises(RuntimeError), transaction.atomic():
        paid = a.payment(account=account)
        assert Receipt.objects.get(payment=paid).number == 2
        raise RuntimeError("the caller's transaction fails after the payment")
    assert not Payment.objects.filter(account=account).exists()
    a.payment()
    assert numbers() == [1, 2]


def test_the_pdf_has_the_three_copies_with_the_amount_in_words(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account()
    bill = a.issued_bill(account, "100.00", date(2026, 9, 15))
    payment = pay(a, account, "123.45", date(2026, 10, 15))  # fee 3.00, principal 100.00
    receipt = Receipt.objects.get(payment=payment)
    pdf, content_type = render_receipt(receipt, printed=print_receipt(a.cashier(), receipt))
    assert content_type == "application/pdf"
    assert isinstance(pdf, bytes)
    text = pdf_text(pdf)
    for copy in ("客户联", "存根联", "记账联"):
        assert copy in text
    assert text.count(receipt.display_number) == 3
    assert "壹佰贰拾叁元肆角伍分" in text and "123.45" in text
    assert bill.number in text and "3.00" in text and "20.45" in text  # the surplus, credited
    assert account.number in text and "现金" in text
    assert "作废" not in text and "重打" not in text and "仅供查看" not in text


def test_the_english_receipt_reads_in_english(in_tenant_a: TenantWorld) -> None:
    receipt = in_tenant_a.receipt()
    html, _type = render_receipt(receipt, language="en", as_pdf=False)
    assert isinstance(html, str)
    for copy in ("Customer copy", "Stub", "Bookkeeping copy"):
        assert copy in html
    assert "Counter, cash" in html and "50.00" in html


def test_a_reprint_is_marked_with_its_number_and_audited(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    receipt = a.receipt()
    cashier = a.cashier()
    print_receipt(cashier, receipt)
    first = reprint_receipt(cashier, receipt)
    second = reprint_receipt(cashier, receipt)
    assert (first.copy, second.copy) == (1, 2)
    text = pdf_text(render_receipt(receipt, printed=second)[0])  # type: ignore[arg-type]
    assert "重打" in text and "第 2 次" in text
    assert text.count("重打") >= 3  # on every copy
    assert "仅供查看" not in text
    events = AuditEvent.objects.filter(action="receipt.reprinted", object_id=str(receipt.pk))
    assert events.count() == 2
    assert ReceiptPrint.objects.filter(receipt=receipt).count() == 3  # the original and two


def test_the_receipt_of_a_reversed_payment_is_void_and_keeps_its_number(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    receipt = a.receipt()
    finance = Principal.for_user(a.staff((Role.HQ_FINANCE, None)))
    reverse_payment(finance, receipt.payment, "银行退票")
    html, _type = render_receipt(receipt, as_pdf=False)
    assert "作废" in html and "银行退票" in html and receipt.display_number in html


@pytest.mark.django_db
def test_the_api_serves_the_document_and_records_reprints(world: World) -> None:
    receipt = world.a.receipt(world.a.sites[0])
    bob = world.client_for(world.bob)
    url = f"/api/v1/receipts/{receipt.pk}/"
    shown = bob.get(url).json()
    assert shown["number"] == receipt.display_number and shown["reprints"] == 0
    assert shown["void"] is False and shown["amount"] == "50.00"
    assert shown["original_printed"] is False
    pdf = bob.get(f"{url}document/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert bob.get(f"{url}document/", {"as": "doc"}).status_code == 400
    assert bob.post(f"{url}print/", {"as": "doc"}, format="json").status_code == 400
    assert bob.get(url).json()["original_printed"] is False  # bad input recorded nothing
    assert bob.post(f"{url}print/", {"as": "html"}, format="json").status_code == 200
    reprinted = bob.post(f"{url}reprint/", {"as": "html"}, format="json")
    assert reprinted.status_code == 200 and "重打" in reprinted.content.decode()
    shown = bob.get(url).json()
    assert (shown["original_printed"], shown["reprints"]) == (True, 1)
    collector = world.client_for(world.a.staff((Role.COLLECTOR, None)))
    assert collector.get(url).status_code == 200
    assert collector.post(f"{url}reprint/", {}, format="json").status_code == 403
    assert world.client_for(world.carol).get(url).status_code == 404
    assert world.client_for(world.mallory).get(url).status_code == 404


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1.00", "壹元整"),
        ("0.50", "伍角整"),
        ("0.05", "伍分"),
        ("100.05", "壹佰元零伍分"),
        ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
        ("105000.00", "壹拾万伍仟元整"),
        ("100000001.00", "壹亿零壹元整"),
        ("10010000.00", "壹仟零壹万元整"),
        ("2005.60", "贰仟零伍元陆角整"),
        ("30.07", "叁拾元零柒分"),
        ("0.00", "零元整"),
    ],
)
def test_amounts_in_words_follow_the_accounting_rules(amount: str, words: str) -> None:
    assert amount_in_words(Decimal(amount)) == words


def test_the_number_is_taken_inside_the_payments_own_transaction(in_tenant_a: TenantWorld) -> None:
    """Two payments in one outer transaction each get their number; both are given back when
    it rolls back."""
    a = in_tenant_a
    account = a.account()
    cashier = a.cashier()
    a.on_shift(cashier, account.site)
    with pytest.raises(RuntimeError), transaction.atomic():
        for _ in range(2):
            post_payment(
                cashier, account=account, channel="counter_cash", amount=Decimal("1.00"),
                idempotency_key=unique("k"),
            )  # fmt: skip
        assert numbers() == [1, 2]
        raise RuntimeError
    assert numbers() == []
