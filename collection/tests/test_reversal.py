"""Reversing a payment (冲正): the worked example with its reversing lines and the balances
restored, who may on which business day, segregation of duties, once only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from billing.runs.services import FourEyesError
from collection.models import Payment, PaymentAllocation, PaymentReversal, Receipt
from collection.services.allocation import account_due
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.reversal import reverse_payment
from collection.tests.test_allocation import at, balance, lines, pay, tenant_balance
from ledger.models import JournalLine, LedgerKind
from tenancy.models import AuditEvent, Site
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, World, unique


def person(world: TenantWorld, *grants: tuple[str, Site | None]) -> Principal:
    return Principal.for_user(world.staff(*grants))


def test_a_reversal_posts_the_payment_negated_and_opens_the_bill_again(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account()
    bill = a.issued_bill(account, "100.00", date(2026, 9, 15))
    # 150.00 on 10-15: fee 3.00 (30 days × 1‰), principal 100.00, 47.00 to credit on account.
    payment = pay(a, account, "150.00", date(2026, 10, 15))
    assert lines(payment) == [
        ("cash", "150.00", ""),
        ("late_fees", "-3.00", f"bill:{bill.pk}"),
        ("receivable", "-100.00", f"bill:{bill.pk}"),
        ("wallet", "-47.00", "surplus"),
    ]
    manager = person(a, (Role.SITE_MANAGER, a.sites[0]))
    reversal = reverse_payment(manager, payment, "收错户号", now=at(date(2026, 10, 15)))
    reversing = sorted(
        (kind, str(amount), reference)
        for kind, amount, reference in JournalLine.objects.filter(
            entry_id=reversal.entry_id
        ).values_list("ledger_account__kind", "amount", "reference")
    )
    assert reversing == [
        ("cash", "-150.00", ""),
        ("late_fees", "3.00", f"bill:{bill.pk}"),
        ("receivable", "100.00", f"bill:{bill.pk}"),
        ("wallet", "47.00", "surplus"),
    ]
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("100.00")
    assert balance(account, LedgerKind.WALLET) == Decimal("0.00")
    assert tenant_balance(LedgerKind.CASH) == Decimal("0.00")
    assert tenant_balance(LedgerKind.LATE_FEES) == Decimal("0.00")
    negated = PaymentAllocation.objects.filter(reversal=reversal)
    assert [(row.bill_id, str(row.late_fee), str(row.principal)) for row in negated] == [
        (bill.pk, "-3.00", "-100.00")
    ]
    # The bill is open again and its late fee runs as if the payment had never been made:
    # on 10-20, 35 days × 1‰ × 100.00 = 3.50.
    due = account_due(account, date(2026, 10, 20))
    assert [(item.bill_id, item.principal, item.late_fee) for item in due.items] == [
        (bill.pk, Decimal("100.00"), Decimal("3.50"))
    ]
    receipt = Receipt.objects.get(payment=payment)
    assert receipt.number == 1  # void, and keeps its number
    assert Payment.objects.reversed().get() == payment
    assert AuditEvent.objects.filter(action="payment.reversed", object_id=str(payment.pk)).exists()


def test_a_supervisor_reverses_on_the_business_day_finance_on_any_day(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    manager = person(a, (Role.SITE_MANAGER, a.sites[0]))
    admin = person(a, (Role.TENANT_ADMIN, None))
    finance = person(a, (Role.HQ_FINANCE, None))
    day, next_day = date(2026, 10, 15), date(2026, 10, 16)
    for supervisor in (manager, admin):
        late = pay(a, a.account(), "20.00", day)
        with translation.override("en"), pytest.raises(PermissionDenied, match="by finance"):
            reverse_payment(supervisor, late, "错收", now=at(next_day))
        same_day = pay(a, a.account(), "20.00", day)
        reverse_payment(supervisor, same_day, "错收", now=at(day))
    late = pay(a, a.account(), "20.00", day)
    reverse_payment(finance, late, "银行退回", now=at(date(2026, 12, 1)))
    assert PaymentReversal.objects.count() == 3


def test_the_business_day_is_the_tenants_local_date(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account()
    # 23:30 in Shanghai on 10-15 (15:30 UTC): the payment's business day is 10-15.
    cashier = a.cashier()
    a.on_shift(cashier, account.site)
    payment = post_payment(
        cashier, account=account, channel="counter_cash", amount=Decimal("10.00"),
        idempotency_key=unique("k"), now=datetime(2026, 10, 15, 15, 30, tzinfo=UTC),
    ).payment  # fmt: skip
    assert payment.paid_on == date(2026, 10, 15)
    manager = person(a, (Role.SITE_MANAGER, None))
    # 00:30 in Shanghai on 10-16 is still 10-15 in UTC, but another business day here.
    with pytest.raises(PermissionDenied):
        reverse_payment(manager, payment, "错收", now=datetime(2026, 10, 15, 16, 30, tzinfo=UTC))


def test_nobody_reverses_a_payment_they_took(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    for role in (Role.SITE_MANAGER, Role.HQ_FINANCE, Role.TENANT_ADMIN):
        both = person(a, (Role.CASHIER, None), (role, None))
        payment = pay(a, a.account(), "30.00", date(2026, 10, 15), by=both)
        with pytest.raises(FourEyesError):
            reverse_payment(both, payment, "自己冲正", now=at(date(2026, 10, 15)))
    assert not PaymentReversal.objects.exists()


def test_an_integration_never_reverses_a_payment(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    client, _token = a.api_client((Role.HQ_FINANCE, None))
    payment = pay(a, a.account(), "30.00", date(2026, 10, 15))
    with pytest.raises(FourEyesError):
        reverse_payment(Principal.for_api_client(client), payment, "x", now=at(date(2026, 10, 15)))


def test_a_payment_is_reversed_once(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    finance = person(a, (Role.HQ_FINANCE, None))
    payment = pay(a, a.account(), "30.00", date(2026, 10, 15))
    reverse_payment(finance, payment, "银行退回")
    with pytest.raises(PaymentConflict):
        reverse_payment(finance, payment, "再冲一次")
    with pytest.raises(ValidationError):
        reverse_payment(finance, payment, "   ")
    assert PaymentReversal.objects.count() == 1


@pytest.mark.django_db
def test_the_api_reverses_once_with_a_reason_and_voids_the_receipt(world: World) -> None:
    payment = world.a.payment(world.a.sites[0])
    manager = world.a.staff((Role.SITE_MANAGER, world.a.sites[0]))
    client = world.client_for(manager)
    url = f"/api/v1/payments/{payment.pk}/reverse/"
    assert client.post(url, {}, format="json").status_code == 400  # no reason
    done = client.post(url, {"reason": "收错户号"}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "reversed"
    assert done.json()["reversal"]["reason"] == "收错户号"
    again = client.post(url, {"reason": "again"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 409 and again.json()["error"]["code"] == "reversed"
    receipt = world.client_for(world.alice).get("/api/v1/receipts/").json()["results"][0]
    assert receipt["void"] is True and receipt["number"] == "0000000001"
    # A manager of the other site does not see it; the cashier who took it may not reverse.
    other = world.client_for(world.a.staff((Role.SITE_MANAGER, world.a.sites[1])))
    assert other.post(url, {"reason": "x"}, format="json").status_code == 404
    assert world.client_for(world.bob).post(url, {"reason": "x"}, format="json").status_code == 403


@pytest.mark.django_db
def test_the_api_refuses_the_cashier_who_took_the_payment(world: World) -> None:
    a = world.a
    cashier_manager = a.staff((Role.CASHIER, None), (Role.SITE_MANAGER, None))
    payment = a.payment(by=Principal.for_user(cashier_manager))
    response = world.client_for(cashier_manager).post(
        f"/api/v1/payments/{payment.pk}/reverse/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "four_eyes"
    with a.active():
        assert not PaymentReversal.objects.exists()


def test_reversing_a_payment_whose_credit_a_later_payment_used_leaves_the_wallet_owed(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account()
    first_bill = a.issued_bill(account, "50.00", date(2026, 12, 15))
    first = pay(a, account, "80.00", date(2026, 11, 2))  # 50.00 to the bill, 30.00 of credit
    a.issued_bill(account, "30.00", date(2026, 12, 20))
    pay(a, account, "10.00", date(2026, 11, 3))  # 10.00 cash and 20.00 of the credit
    assert balance(account, LedgerKind.WALLET) == Decimal("-10.00")
    finance = person(a, (Role.HQ_FINANCE, None))
    reverse_payment(finance, first, "支票退票", now=at(date(2026, 11, 4)))
    # The first bill is open again (50.00) and the 20.00 of credit the second payment used is
    # owed on the wallet: −10.00 + 30.00 = 20.00. In all the customer paid 10.00 of 80.00.
    assert balance(account, LedgerKind.WALLET) == Decimal("20.00")
    due = account_due(account, date(2026, 11, 4))
    assert [item.bill_id for item in due.items] == [first_bill.pk]
    assert (due.principal, due.wallet_owed, due.amount_due) == (
        Decimal("50.00"),
        Decimal("20.00"),
        Decimal("70.00"),
    )
    # Paying the 70.00 settles both: the bill, then the wallet.
    pay(a, account, "70.00", date(2026, 11, 5))
    assert balance(account, LedgerKind.WALLET) == Decimal("0.00")
    assert account_due(account, date(2026, 11, 5)).amount_due == Decimal("0.00")
