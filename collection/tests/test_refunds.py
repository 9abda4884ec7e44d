"""Deposits and refunds: deposits taken and shown against the policy; refunds requested,
approved by a second person, paid and posted; never more than the account holds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from billing.runs.services import FourEyesError
from collection.models import Deposit, Refund, RefundState
from collection.services.deposits import deposit_status, set_deposit_policy, take_deposit
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.refunds import approve_refund, pay_refund, reject_refund, request_refund
from customers.models import Account
from ledger.models import JournalLine, LedgerAccount, LedgerKind
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, unique


def balance(account: Account, kind: str) -> Decimal:
    found = LedgerAccount.objects.filter(account=account, kind=kind).first()
    return found.balance if found else Decimal("0.00")


def tenant_balance(kind: str) -> Decimal:
    rows = LedgerAccount.objects.filter(kind=kind, account=None).values_list("balance", flat=True)
    return sum(rows, Decimal("0.00"))


def credit_of(a: TenantWorld, account: Account, amount: str) -> None:
    """Credit on account: a payment with nothing to pay."""
    post_payment(
        a.cashier_on_shift(), account=account, channel="counter_cash", amount=Decimal(amount),
        idempotency_key=unique("k"),
    )  # fmt: skip


def test_a_deposit_is_posted_with_its_own_receipt_number_and_shown_against_the_policy(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(customer_class="commercial")
    set_deposit_policy(
        a.system, utility="electricity", customer_class="commercial", amount=Decimal("2000.00")
    )
    cashier = a.cashier_on_shift()
    status = deposit_status(account)
    assert (status.required, status.held, status.missing) == (
        Decimal("2000.00"), Decimal("0.00"), Decimal("2000.00"),
    )  # fmt: skip
    first = take_deposit(
        cashier, account=account, channel="counter_cash", amount=Decimal("1500.00"),
        idempotency_key="dep-1",
    )  # fmt: skip
    # Dr the cashier's cash on hand 1,500.00, Cr the account's deposit 1,500.00.
    lines = JournalLine.objects.filter(entry_id=first.deposit.entry_id)
    assert sorted(lines.values_list("ledger_account__kind", "amount")) == [
        ("cash", Decimal("1500.00")),
        ("deposit", Decimal("-1500.00")),
    ]
    retry = take_deposit(
        cashier, account=account, channel="counter_cash", amount=Decimal("1500.00"),
        idempotency_key="dep-1",
    )  # fmt: skip
    assert (retry.created, retry.deposit.pk) == (False, first.deposit.pk)
    with pytest.raises(PaymentConflict):
        take_deposit(
            cashier, account=account, channel="counter_cash", amount=Decimal("99.00"),
            idempotency_key="dep-1",
        )  # fmt: skip
    second = take_deposit(
        cashier, account=account, channel="counter_card", amount=Decimal("500.00"),
        external_reference="POS-0002", idempotency_key="dep-2",
    ).deposit  # fmt: skip
    numbers = sorted(Deposit.objects.values_list("receipt_number", flat=True))
    assert numbers == [1, 2]
    assert second.display_receipt_number == "Y0000000002"
    status = deposit_status(account)
    assert (status.held, status.missing) == (Decimal("2000.00"), Decimal("0.00"))
    assert tenant_balance(LedgerKind.CASH) == Decimal("1500.00")


def test_a_card_deposit_needs_the_terminals_slip_reference(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account()
    cashier = a.cashier_on_shift()
    with pytest.raises(ValidationError) as refused:
        take_deposit(
            cashier, account=account, channel="counter_card", amount=Decimal("500.00"),
            external_reference="  ", idempotency_key="dep-card",
        )  # fmt: skip
    assert refused.value.error_dict["external_reference"][0].code == "required"
    assert not Deposit.objects.exists()
    taken = take_deposit(
        cashier, account=account, channel="counter_card", amount=Decimal("500.00"),
        external_reference="POS-0001", idempotency_key="dep-card",
    ).deposit  # fmt: skip
    assert taken.external_reference == "POS-0001"
    # Dr the card acquirer's clearing 500.00, Cr the account's deposit 500.00.
    lines = JournalLine.objects.filter(entry_id=taken.entry_id)
    assert sorted(lines.values_list("ledger_account__kind", "amount")) == [
        ("clearing", Decimal("500.00")),
        ("deposit", Decimal("-500.00")),
    ]


def test_a_residential_account_with_no_policy_needs_no_deposit(in_tenant_a: TenantWorld) -> None:
    account = in_tenant_a.account()
    assert deposit_status(account).required == Decimal("0.00")


def test_a_refund_of_credit_is_approved_by_a_second_person_then_paid_and_posted(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account()
    credit_of(a, account, "80.00")  # wallet −80.00: credit on account
    clerk = a.cashier_on_shift()
    refund = request_refund(
        clerk, account=account, from_wallet=Decimal("80.00"), channel="bank_transfer",
        payee_bank_account="6222020200112233445", payee_bank="工商银行", reason="客户申请退余额",
    )  # fmt: skip
    # Nobody approves their own request, and a cashier is no approver.
    with pytest.raises(FourEyesError):
        approve_refund(clerk, refund)
    with pytest.raises(PermissionDenied):
        approve_refund(a.cashier_on_shift(), refund)
    supervisor = Principal.for_user(a.staff((Role.SITE_MANAGER, a.sites[0])))
    approve_refund(supervisor, refund)
    # Approval: Dr wallet 80.00, Cr refunds payable 80.00.
    assert balance(account, LedgerKind.WALLET) == Decimal("0.00")
    assert tenant_balance(LedgerKind.REFUNDS_PAYABLE) == Decimal("-80.00")
    with pytest.raises(PaymentConflict):
        approve_refund(supervisor, refund)
    with pytest.raises(ValidationError) as unpaid:
        pay_refund(clerk, refund)
    assert unpaid.value.error_dict["payment_reference"][0].code == "required"
    paid = pay_refund(clerk, refund, payment_reference="BANK-778")
    # Payment: Dr refunds payable 80.00, Cr the refunds' bank clearing 80.00.
    assert paid.state == RefundState.PAID
    assert tenant_balance(LedgerKind.REFUNDS_PAYABLE) == Decimal("0.00")
    assert tenant_balance(LedgerKind.CLEARING) == Decimal("-80.00")


def test_a_refund_over_what_the_account_holds_is_refused(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account()
    credit_of(a, account, "80.00")
    with pytest.raises(ValidationError) as refused:
        request_refund(
            a.cashier_on_shift(), account=account, from_wallet=Decimal("80.01"), channel="cash",
            reason="退款",
        )  # fmt: skip
    assert refused.value.error_dict["from_wallet"][0].code == "over_balance"
    # Credit pays open bills first: with a 50.00 bill, 30.00 is refundable. (Issued after the
    # payment, so the credit sits in the wallet and the bill on the receivable.)
    a.issued_bill(account, "50.00", date(2026, 12, 31))
    with pytest.raises(ValidationError):
        request_refund(
            a.cashier_on_shift(), account=account, from_wallet=Decimal("30.01"), channel="cash",
            reason="退款",
        )  # fmt: skip
    request_refund(
        a.cashier_on_shift(),
        account=account,
        from_wallet=Decimal("30.00"),
        channel="cash",
        reason="退款",
    )
    # What is requested counts: nothing more can be asked for.
    with pytest.raises(ValidationError):
        request_refund(
            a.cashier_on_shift(), account=account, from_wallet=Decimal("0.01"), channel="cash",
            reason="退款",
        )  # fmt: skip
    with pytest.raises(ValidationError):
        request_refund(
            a.cashier_on_shift(), account=account, from_deposit=Decimal("1.00"), channel="cash",
            reason="退款",
        )  # fmt: skip


def test_a_rejected_refund_moves_nothing_and_frees_the_credit(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account()
    credit_of(a, account, "40.00")
    refund = request_refund(
        a.cashier_on_shift(),
        account=account,
        from_wallet=Decimal("40.00"),
        channel="cash",
        reason="退款",
    )
    finance = Principal.for_user(a.staff((Role.HQ_FINANCE, None)))
    with pytest.raises(ValidationError):
        reject_refund(finance, refund, " ")
    rejected = reject_refund(finance, refund, "客户撤回")
    assert (rejected.state, rejected.rejection_reason) == (RefundState.REJECTED, "客户撤回")
    assert balance(account, LedgerKind.WALLET) == Decimal("-40.00")
    with pytest.raises(PaymentConflict):
        pay_refund(a.cashier_on_shift(), refund)
    again = request_refund(
        a.cashier_on_shift(),
        account=account,
        from_wallet=Decimal("40.00"),
        channel="cash",
        reason="退款",
    )
    assert Refund.objects.filter(state=RefundState.REQUESTED).get() == again


def test_a_prepaid_balance_is_refunded_only_when_the_account_is_closed(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    credit_of(a, account, "100.00")
    with pytest.raises(ValidationError):
        request_refund(
            a.cashier_on_shift(), account=account, from_wallet=Decimal("10.00"), channel="cash",
            reason="退款",
        )  # fmt: skip


def test_an_open_account_keeps_the_deposit_its_policy_asks_for(in_tenant_a: TenantWorld) -> None:
    """2,000.00 required, 2,500.00 held: 500.00 was taken in excess and may come back while the
    account is open; 500.01 may not (it would leave the account short of its deposit)."""
    a = in_tenant_a
    account = a.account(customer_class="commercial")
    set_deposit_policy(
        a.system, utility="electricity", customer_class="commercial", amount=Decimal("2000.00")
    )
    take_deposit(
        a.cashier_on_shift(), account=account, channel="counter_cash", amount=Decimal("2500.00"),
        idempotency_key=unique("dep-"),
    )  # fmt: skip
    clerk = a.cashier_on_shift()
    with pytest.raises(ValidationError) as refused:
        request_refund(
            clerk, account=account, from_deposit=Decimal("500.01"), channel="cash", reason="多收"
        )
    assert refused.value.error_dict["from_deposit"][0].code == "over_balance"
    assert "2000.00" in " ".join(refused.value.messages)
    refund = request_refund(
        clerk, account=account, from_deposit=Decimal("500.00"), channel="cash", reason="多收"
    )
    assert refund.amount == Decimal("500.00")
    with pytest.raises(ValidationError):  # the 500.00 is promised: nothing more
        request_refund(
            clerk, account=account, from_deposit=Decimal("0.01"), channel="cash", reason="多收"
        )
