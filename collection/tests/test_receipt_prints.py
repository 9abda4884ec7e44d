"""Printing a receipt, a payment's or a deposit's: the original printed once, recorded and
audited; reprints only after it, marked 重打; every copy not served from a recorded print (by its
printer, within a few minutes) stamped view-only (仅供查看); a void receipt still says 作废.
Through the service, the document, the API and, for the race of two "print the original", real
threads on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.tests.test_documents import pdf_text
from collection.documents import render_deposit_receipt, render_receipt
from collection.models import DepositPrint, ReceiptPrint
from collection.services.errors import PaymentConflict
from collection.services.receipts import (
    PRINT_WINDOW,
    print_deposit_receipt,
    print_receipt,
    printed_for,
    reprint_deposit_receipt,
    reprint_receipt,
)
from collection.services.reversal import reverse_payment
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.concurrency import run_together
from tests.world import TenantWorld, World

VIEW_ONLY = "仅供查看"


def test_the_original_is_printed_once_and_audited(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    receipt = a.receipt()
    cashier = a.cashier()
    original = print_receipt(cashier, receipt)
    assert (original.copy, original.is_original, original.actor_id) == (0, True, cashier.id)
    with pytest.raises(PaymentConflict) as refused:
        print_receipt(a.cashier(), receipt)
    assert refused.value.code == "original_printed"
    assert "重打" in refused.value.messages[0]
    assert ReceiptPrint.objects.filter(receipt=receipt).count() == 1
    event = AuditEvent.objects.get(action="receipt.printed", object_id=str(receipt.pk))
    assert event.actor_id == cashier.id
    assert event.after == {"number": receipt.display_number, "print": 0, "original": True}


def test_a_reprint_before_the_original_is_refused(in_tenant_a: TenantWorld) -> None:
    receipt = in_tenant_a.receipt()
    with pytest.raises(PaymentConflict) as refused:
        reprint_receipt(in_tenant_a.cashier(), receipt)
    assert refused.value.code == "original_not_printed"
    assert not ReceiptPrint.objects.filter(receipt=receipt).exists()
    assert not AuditEvent.objects.filter(object_id=str(receipt.pk), action="receipt.reprinted")


def test_a_copy_not_named_by_a_print_is_stamped_view_only_on_every_copy(
    in_tenant_a: TenantWorld,
) -> None:
    receipt = in_tenant_a.receipt()
    text = pdf_text(render_receipt(receipt)[0])  # type: ignore[arg-type]
    assert text.count(VIEW_ONLY) >= 3  # one mark at least on each of the three copies
    assert "不作为收款凭证" in text
    original = print_receipt(in_tenant_a.cashier(), receipt)
    html, _type = render_receipt(receipt, as_pdf=False, printed=original)
    assert VIEW_ONLY not in html and "重打" not in html and receipt.display_number in html


def test_only_its_printer_gets_a_prints_copies_and_only_for_a_few_minutes(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    receipt = a.receipt()
    cashier = a.cashier()
    original = print_receipt(cashier, receipt)
    prints = ReceiptPrint.objects.filter(receipt=receipt)
    assert printed_for(prints, str(original.pk), cashier) == original
    assert printed_for(prints, str(original.pk), a.cashier()) is None  # another cashier
    assert printed_for(prints, "abc", cashier) is None
    assert printed_for(prints, "9" * 30, cashier) is None
    other = a.receipt()
    assert (
        printed_for(ReceiptPrint.objects.filter(receipt=other), str(original.pk), cashier) is None
    )
    later = timezone.now() + PRINT_WINDOW + timedelta(seconds=1)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(timezone, "now", lambda: later)
        assert printed_for(prints, str(original.pk), cashier) is None


def test_a_void_receipt_prints_void_on_its_original_and_its_view_only_copies(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    receipt = a.receipt()
    reverse_payment(Principal.for_user(a.staff((Role.HQ_FINANCE, None))), receipt.payment, "退票")
    viewed, _type = render_receipt(receipt, as_pdf=False)
    assert "作废" in viewed and VIEW_ONLY in viewed
    printed, _type = render_receipt(
        receipt, as_pdf=False, printed=print_receipt(a.cashier(), receipt)
    )
    assert "作废" in printed and VIEW_ONLY not in printed


def test_a_deposit_receipt_has_the_three_copies_its_y_number_and_the_amount_in_words(
    in_tenant_a: TenantWorld,
) -> None:
    deposit = in_tenant_a.deposit(amount="2000.00")
    cashier = in_tenant_a.cashier()
    original = print_deposit_receipt(cashier, deposit)
    text = pdf_text(render_deposit_receipt(deposit, printed=original)[0])  # type: ignore[arg-type]
    for copy in ("客户联", "存根联", "记账联"):
        assert copy in text
    assert text.count(deposit.display_receipt_number) == 3
    assert deposit.display_receipt_number.startswith("Y")
    assert "押金收据" in text and "贰仟元整" in text and "2000.00" in text
    assert VIEW_ONLY not in text and "重打" not in text
    reprinted = reprint_deposit_receipt(cashier, deposit)
    marked, _type = render_deposit_receipt(deposit, as_pdf=False, printed=reprinted)
    assert isinstance(marked, str)
    assert marked.count("重打") >= 3 and VIEW_ONLY not in marked
    viewed, _type = render_deposit_receipt(deposit, as_pdf=False, language="en")
    assert "Deposit receipt" in viewed and "For viewing only" in viewed
    actions = AuditEvent.objects.filter(object_id=str(deposit.pk)).values_list("action", flat=True)
    assert sorted(actions) == [
        "deposit.receipt_printed",
        "deposit.receipt_reprinted",
        "deposit.taken",
    ]
    with pytest.raises(PaymentConflict):
        print_deposit_receipt(cashier, deposit)
    assert list(DepositPrint.objects.filter(deposit=deposit).values_list("copy", flat=True)) == [
        0,
        1,
    ]


@pytest.mark.django_db
def test_the_api_prints_the_original_once_and_marks_unrecorded_documents(world: World) -> None:
    receipt = world.a.receipt(world.a.sites[0])
    bob = world.client_for(world.bob)
    url = f"/api/v1/receipts/{receipt.pk}/"
    viewed = bob.get(f"{url}document/", {"as": "html"})
    assert viewed.status_code == 200 and VIEW_ONLY in viewed.content.decode()
    printed = bob.post(f"{url}print/", {"as": "html"}, format="json")
    assert printed.status_code == 200 and VIEW_ONLY not in printed.content.decode()
    print_id = printed["X-Receipt-Print"]
    again = bob.get(f"{url}document/", {"as": "html", "print": print_id})
    assert again.status_code == 200 and VIEW_ONLY not in again.content.decode()
    twice = bob.post(f"{url}print/", {"as": "html"}, format="json")
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "original_printed"
    alice = world.client_for(world.alice)  # not the printer: the print's copies are not hers
    assert (
        VIEW_ONLY
        in alice.get(f"{url}document/", {"as": "html", "print": print_id}).content.decode()
    )
    collector = world.client_for(world.a.staff((Role.COLLECTOR, None)))
    assert collector.get(f"{url}document/").status_code == 200
    assert collector.post(f"{url}print/", {}, format="json").status_code == 403
    assert (
        world.client_for(world.mallory).post(f"{url}print/", {}, format="json").status_code == 404
    )
    assert world.client_for(world.carol).post(f"{url}print/", {}, format="json").status_code == 404
    with world.a.active():
        assert ReceiptPrint.objects.filter(receipt=receipt).count() == 1


@pytest.mark.django_db
def test_the_api_serves_and_prints_a_deposit_receipt(world: World) -> None:
    deposit = world.a.deposit(world.a.sites[0])
    bob = world.client_for(world.bob)
    url = f"/api/v1/deposits/{deposit.pk}/"
    assert bob.get(url).json()["original_printed"] is False
    assert bob.post(f"{url}reprint/", {}, format="json").status_code == 409
    viewed = bob.get(f"{url}document/", {"as": "html"}).content.decode()
    assert VIEW_ONLY in viewed and deposit.display_receipt_number in viewed
    english = bob.get(f"{url}document/", {"as": "html", "lang": "en"}).content.decode()
    assert "Customer copy" in english and "For viewing only" in english and "客户联" not in english
    pdf = bob.post(f"{url}print/", {}, format="json")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert f"receipt-{deposit.display_receipt_number}.pdf" in pdf["Content-Disposition"]
    reprinted = bob.post(f"{url}reprint/", {"as": "html"}, format="json")
    assert reprinted.status_code == 200 and "重打" in reprinted.content.decode()
    shown = bob.get(url).json()
    assert (shown["original_printed"], shown["reprints"]) == (True, 1)
    collector = world.client_for(world.a.staff((Role.COLLECTOR, None)))
    assert collector.post(f"{url}reprint/", {}, format="json").status_code == 403
    assert world.client_for(world.mallory).get(f"{url}document/").status_code == 404


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clerks_printing_the_original_at_once_get_one_original_and_one_refusal(
    world: World,
) -> None:
    """The receipt's row is locked while a print is recorded: the second clerk waits, finds
    the original and is refused (409), instead of printing a second original or a reprint
    nobody asked for."""
    a = world.a
    receipt = a.receipt()
    clerks = [a.cashier(), a.cashier()]

    def print_original(index: int) -> int:
        return print_receipt(clerks[index], receipt).pk

    printed, errors = run_together(2, print_original, a.tenant)
    assert len(printed) == 1 and len(errors) == 1
    assert isinstance(errors[0], PaymentConflict) and errors[0].code == "original_printed"
    with a.active():
        assert list(
            ReceiptPrint.objects.filter(receipt=receipt).values_list("copy", flat=True)
        ) == [0]
        assert (
            AuditEvent.objects.filter(action="receipt.printed", object_id=str(receipt.pk)).count()
            == 1
        )
