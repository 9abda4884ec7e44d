"""Cashier shifts (日结) as worked examples: the expected cash from the ledger with a float, two
cash payments (one reversed) and a card payment; closing without and with a difference; the
supervisor's approval posting the difference; a reversal after close counted in the next
shift; the hand-over to the bank; counter payments refused without an open shift."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from billing.runs.services import FourEyesError
from collection.models import AttemptOutcome, Payment, PaymentAttempt, Shift, ShiftState
from collection.services.deposits import take_deposit
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.refunds import approve_refund, pay_refund, request_refund
from collection.services.reversal import reverse_payment
from collection.services.shifts import (
    approve_difference,
    cash_to_hand_over,
    close_shift,
    hand_over_cash,
    open_shift,
    open_shift_of,
    other_movements,
    reject_count,
    require_open_shift,
    shift_figures,
)
from ledger.models import JournalEntry, JournalLine, LedgerAccount, LedgerKind
from tenancy.models import AuditEvent, Site
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, unique

D = Decimal


def person(world: TenantWorld, *grants: tuple[str, Site | None]) -> Principal:
    return Principal.for_user(world.staff(*grants))


def take(
    world: TenantWorld, cashier: Principal, amount: str, channel: str = "counter_cash"
) -> Payment:
    return post_payment(
        cashier, account=world.account(), channel=channel, amount=D(amount),
        idempotency_key=unique("k"),
        external_reference=unique("slip-") if channel == "counter_card" else "",
    ).payment  # fmt: skip


def cash_balance(cashier: Principal) -> Decimal:
    return LedgerAccount.objects.get(kind=LedgerKind.CASH, holder=f"user:{cashier.id}").balance


def the_day(world: TenantWorld) -> tuple[Principal, Shift, Principal]:
    """A float of 500.00; cash 120.00 and 80.00, the 80.00 reversed; a card payment of 300.00."""
    a = world
    cashier = a.cashier()
    manager = person(a, (Role.SITE_MANAGER, a.sites[0]))
    shift = open_shift(cashier, site=a.sites[0], float_amount=D("500.00"))
    take(a, cashier, "120.00")
    wrong = take(a, cashier, "80.00")
    reverse_payment(manager, wrong, "收错户号")
    take(a, cashier, "300.00", "counter_card")
    return cashier, shift, manager


def test_expected_cash_is_the_float_plus_the_ledgers_cash_movements(
    in_tenant_a: TenantWorld,
) -> None:
    cashier, shift, _manager = the_day(in_tenant_a)
    figures = shift_figures(shift)
    # cash: 500.00 float + 120.00 + 80.00 − 80.00 (reversed) = 620.00
    assert figures.cash_movements == D("120.00")
    assert figures.expected_cash == D("620.00")
    assert (figures.cash.payments, figures.cash.taken) == (2, D("200.00"))
    assert (figures.cash.reversals, figures.cash.reversed) == (1, D("80.00"))
    assert figures.other_cash == D("0.00")
    # card: 300.00 taken, nothing reversed
    assert (figures.card.payments, figures.expected_card) == (1, D("300.00"))
    assert cash_balance(cashier) == D("120.00")  # the float is not in the books
    assert set(Payment.objects.values_list("shift_id", flat=True)) == {shift.pk}


def test_a_count_that_matches_closes_the_shift_at_once(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    cashier, shift, _manager = the_day(a)
    closed = close_shift(cashier, shift, counted_cash=D("620.00"), counted_card=D("300.00"))
    assert closed.state == ShiftState.CLOSED
    assert (closed.expected_cash, closed.difference_cash) == (D("620.00"), D("0.00"))
    assert (closed.expected_card, closed.difference_card) == (D("300.00"), D("0.00"))
    assert (closed.cash_payments, closed.card_payments) == (2, 1)
    assert closed.difference_entry_id is None
    assert not JournalEntry.objects.filter(source_type="shift_difference").exists()
    assert open_shift_of(cashier) is None
    with pytest.raises(ValidationError) as refused:
        take(a, cashier, "10.00")
    assert refused.value.error_list[0].code == "no_open_shift"


def test_a_shortage_waits_for_a_supervisor_whose_approval_posts_it_once(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier, shift, manager = the_day(a)
    # counted 615.00 against 620.00 expected: 5.00 short; the card settlement matches.
    pending = close_shift(
        cashier, shift, counted_cash=D("615.00"), counted_card=D("300.00"), note="少五元"
    )
    assert pending.state == ShiftState.PENDING
    assert pending.difference_cash == D("-5.00") and pending.difference_card == D("0.00")
    with pytest.raises(FourEyesError):
        approve_difference(cashier, pending, "我自己批")
    approved = approve_difference(manager, pending, "找零失误，已记短款")
    assert approved.state == ShiftState.CLOSED
    assert approved.decided_by_label == manager.label
    # Dr cash over and short 5.00, Cr the cashier's cash on hand 5.00
    lines = JournalLine.objects.filter(entry_id=approved.difference_entry_id)
    assert sorted((line.ledger_account.kind, str(line.amount)) for line in lines) == [
        ("cash", "-5.00"),
        ("cash_over_short", "5.00"),
    ]
    # 120.00 taken net, 5.00 of it missing: the books say 115.00 is on hand
    assert cash_balance(cashier) == D("115.00")
    with pytest.raises(PaymentConflict):
        approve_difference(manager, approved, "再批一次")
    assert JournalEntry.objects.filter(source_type="shift_difference").count() == 1
    assert AuditEvent.objects.filter(action="shift.difference_approved").count() == 1


def test_an_overage_is_posted_the_other_way(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    cashier, shift, manager = the_day(a)
    # 622.50 counted against 620.00: 2.50 over
    pending = close_shift(cashier, shift, counted_cash=D("622.50"), counted_card=D("300.00"))
    approve_difference(manager, pending, "多收二元五角，挂长款")
    assert cash_balance(cashier) == D("122.50")  # Dr cash on hand 2.50, Cr over and short
    over_short = LedgerAccount.objects.get(kind=LedgerKind.CASH_OVER_SHORT)
    assert over_short.balance == D("-2.50")


def test_a_rejected_count_is_counted_again_and_takes_no_payment_meanwhile(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier, shift, manager = the_day(a)
    pending = close_shift(cashier, shift, counted_cash=D("600.00"), counted_card=D("300.00"))
    recount = reject_count(manager, pending, "差额太大，请重新清点")
    assert recount.state == ShiftState.RECOUNT
    with pytest.raises(ValidationError):
        take(a, cashier, "10.00")  # the shift stays closed to payments
    closed = close_shift(cashier, recount, counted_cash=D("620.00"), counted_card=D("300.00"))
    assert closed.state == ShiftState.CLOSED and closed.expected_cash == D("620.00")


def test_nobody_but_a_supervisor_of_the_site_decides(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    shift = a.pending_shift(a.sites[0])
    other_site = person(a, (Role.SITE_MANAGER, a.sites[1]))
    finance = person(a, (Role.HQ_FINANCE, None))
    for outsider in (other_site, finance):
        with pytest.raises(PermissionDenied):
            approve_difference(outsider, shift, "批准")
    # A cashier who is also a site manager still may not approve their own shift.
    both = person(a, (Role.CASHIER, None), (Role.SITE_MANAGER, None))
    own = a.shift(a.sites[0], by=both)
    pending = close_shift(both, own, counted_cash=D("90.00"), counted_card=D("0.00"))
    with pytest.raises(FourEyesError):
        approve_difference(both, pending, "自批")
    with pytest.raises(FourEyesError):
        reject_count(both, pending, "自驳")
    # A supervisor who counted in the cashier's absence does not approve that count either.
    absent = a.shift(a.sites[0])
    manager = person(a, (Role.SITE_MANAGER, a.sites[0]))
    counted = close_shift(manager, absent, counted_cash=D("99.00"), counted_card=D("0.00"))
    assert counted.counted_by_label == manager.label
    with pytest.raises(FourEyesError):
        approve_difference(manager, counted, "自己点的")
    admin = person(a, (Role.TENANT_ADMIN, None))
    assert approve_difference(admin, counted, "复核无误").state == ShiftState.CLOSED


def test_a_reversal_after_the_close_counts_in_the_cashiers_next_shift(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    manager = person(a, (Role.SITE_MANAGER, None))
    first = open_shift(cashier, site=a.sites[0], float_amount=D("200.00"))
    paid = take(a, cashier, "120.00")
    first = close_shift(cashier, first, counted_cash=D("320.00"), counted_card=D("0.00"))
    assert first.state == ShiftState.CLOSED
    reverse_payment(manager, paid, "客户退回")  # the 120.00 leaves the next drawer
    second = open_shift(cashier, site=a.sites[0], float_amount=D("200.00"))
    figures = shift_figures(second)
    # 200.00 float − 120.00 paid back = 80.00 expected; the closed shift keeps its figures
    assert figures.expected_cash == D("80.00") and figures.other_cash == D("-120.00")
    assert Shift.objects.get(pk=first.pk).expected_cash == D("320.00")
    take(a, cashier, "30.00")
    closed = close_shift(cashier, second, counted_cash=D("110.00"), counted_card=D("0.00"))
    assert closed.state == ShiftState.CLOSED  # 200.00 − 120.00 + 30.00 = 110.00


def test_cash_goes_to_the_bank_once_per_slip_and_never_more_than_is_on_hand(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    assert cashier.user is not None
    a.cash_on_hand(cashier, a.sites[0], "300.00")  # shift closed with 300.00 taken
    assert cash_to_hand_over(a.tenant, cashier.id or 0, cashier.label) == D("300.00")
    handover, created = hand_over_cash(
        cashier, cashier=cashier.user, site=a.sites[0], amount=D("250.00"), bank="icbc",
        slip_reference="ICBC-0001", handed_on=a.tenant.local_today(),
    )  # fmt: skip
    assert created
    lines = JournalLine.objects.filter(entry_id=handover.entry_id)
    assert sorted((line.ledger_account.holder, str(line.amount)) for line in lines) == [
        ("bank:icbc", "250.00"),  # Dr the bank's clearing
        (f"user:{cashier.id}", "-250.00"),  # Cr the cashier's cash on hand
    ]
    again, created = hand_over_cash(
        cashier, cashier=cashier.user, site=a.sites[0], amount=D("250.00"), bank="icbc",
        slip_reference="ICBC-0001", handed_on=a.tenant.local_today(),
    )  # fmt: skip
    assert again.pk == handover.pk and not created
    with pytest.raises(PaymentConflict):
        hand_over_cash(
            cashier, cashier=cashier.user, site=a.sites[0], amount=D("40.00"), bank="icbc",
            slip_reference="ICBC-0001", handed_on=a.tenant.local_today(),
        )  # fmt: skip
    with pytest.raises(ValidationError) as refused:  # 50.00 is on hand
        hand_over_cash(
            cashier, cashier=cashier.user, site=a.sites[0], amount=D("50.01"), bank="icbc",
            slip_reference="ICBC-0002", handed_on=a.tenant.local_today(),
        )  # fmt: skip
    assert refused.value.error_dict["amount"][0].code == "exceeds_cash_on_hand"
    assert cash_balance(cashier) == D("50.00")
    # The next shift expects its float only: a hand-over is not a drawer movement.
    shift = open_shift(cashier, site=a.sites[0], float_amount=D("100.00"))
    assert shift_figures(shift).expected_cash == D("100.00")
    take(a, cashier, "20.00")
    # The open shift's 20.00 is still in the drawer: 50.00 can go to the bank.
    assert cash_to_hand_over(a.tenant, cashier.id or 0, cashier.label) == D("50.00")
    other = a.cashier()
    with pytest.raises(PermissionDenied):  # another cashier's cash is not theirs to hand over
        hand_over_cash(
            other, cashier=cashier.user, site=a.sites[0], amount=D("10.00"), bank="icbc",
            slip_reference="ICBC-0003", handed_on=a.tenant.local_today(),
        )  # fmt: skip


def test_a_counter_payment_without_an_open_shift_is_refused_and_recorded(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    with pytest.raises(ValidationError) as refused:
        take(a, cashier, "10.00")
    assert refused.value.error_list[0].code == "no_open_shift"
    attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.code) == (AttemptOutcome.REFUSED, "no_open_shift")
    open_shift(cashier, site=a.sites[1], float_amount=D("0.00"))
    with pytest.raises(ValidationError) as elsewhere:
        take(a, cashier, "10.00")  # the account is at site A1
    assert elsewhere.value.error_list[0].code == "shift_site"
    with pytest.raises(ValidationError):
        require_open_shift(a.cashier(), a.sites[0].pk)
    assert not Payment.objects.exists()


def test_one_open_shift_per_cashier(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    open_shift(cashier, site=a.sites[0], float_amount=D("100.00"))
    with pytest.raises(PaymentConflict) as twice:
        open_shift(cashier, site=a.sites[1], float_amount=D("100.00"))
    assert twice.value.code == "shift_open"
    with pytest.raises(ValidationError):
        open_shift(a.cashier(), site=a.sites[0], float_amount=D("-1.00"))
    cashier_a2 = a.cashier(a.sites[1])
    with pytest.raises(PermissionDenied):
        open_shift(cashier_a2, site=a.sites[0], float_amount=D("0.00"))


# --- deposits and refunds at the counter ------------------------------------------------------


def test_deposits_count_in_the_shift_by_channel_and_it_closes_to_the_fen(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    shift = open_shift(cashier, site=a.sites[0], float_amount=D("500.00"))
    take(a, cashier, "120.00")  # a cash payment
    take_deposit(
        cashier, account=a.account(), channel="counter_cash", amount=D("200.00"),
        idempotency_key=unique("d"),
    )  # fmt: skip
    take(a, cashier, "300.00", "counter_card")  # a card payment
    card_deposit = take_deposit(
        cashier, account=a.account(), channel="counter_card", amount=D("1000.00"),
        external_reference="POS-778899", idempotency_key=unique("d"),
    ).deposit  # fmt: skip
    assert (card_deposit.shift_id, card_deposit.external_reference) == (shift.pk, "POS-778899")
    figures = shift_figures(shift)
    # cash: 500.00 float + 120.00 payment + 200.00 deposit = 820.00
    assert figures.expected_cash == D("820.00")
    assert figures.other_cash == D("200.00")  # the deposit
    # card: 300.00 payment + 1,000.00 deposit = 1,300.00 on the terminal's settlement
    assert (figures.card_deposits, figures.card_deposited) == (1, D("1000.00"))
    assert figures.expected_card == D("1300.00")
    # the shift page lists both deposits beside the payments
    listed = [(m.kind, m.amount) for m in other_movements(shift)]
    assert listed == [("deposit", D("200.00")), ("deposit", D("1000.00"))]
    closed = close_shift(cashier, shift, counted_cash=D("820.00"), counted_card=D("1300.00"))
    assert closed.state == ShiftState.CLOSED
    assert (closed.expected_cash, closed.difference_cash) == (D("820.00"), D("0.00"))
    assert (closed.expected_card, closed.difference_card) == (D("1300.00"), D("0.00"))
    # once closed the figures stay as fixed; the cashier's next shift starts with no card
    assert shift_figures(closed).expected_card == D("1300.00")
    later = open_shift(cashier, site=a.sites[0], float_amount=D("0.00"))
    assert shift_figures(later).expected_card == D("0.00")


def test_a_cash_refund_paid_at_the_counter_comes_out_of_expected_cash(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    shift = open_shift(cashier, site=a.sites[0], float_amount=D("500.00"))
    account = a.account()
    take_deposit(
        cashier, account=account, channel="counter_cash", amount=D("300.00"),
        idempotency_key=unique("d"),
    )  # fmt: skip
    refund = request_refund(
        cashier, account=account, from_deposit=D("120.00"), channel="cash", reason="多收押金"
    )
    approve_refund(person(a, (Role.HQ_FINANCE, None)), refund)
    pay_refund(cashier, refund)
    figures = shift_figures(shift)
    # cash: 500.00 float + 300.00 deposit − 120.00 refund handed out = 680.00
    assert figures.cash_movements == D("180.00")
    listed = [(m.kind, m.amount) for m in other_movements(shift)]
    assert listed == [("deposit", D("300.00")), ("refund", D("-120.00"))]
    assert figures.expected_cash == D("680.00")
    closed = close_shift(cashier, shift, counted_cash=D("680.00"), counted_card=D("0.00"))
    assert (closed.state, closed.difference_cash) == (ShiftState.CLOSED, D("0.00"))


def test_a_card_reversal_after_the_close_is_refunded_in_the_next_settlement(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    manager = person(a, (Role.SITE_MANAGER, None))
    first = open_shift(cashier, site=a.sites[0], float_amount=D("200.00"))
    paid = take(a, cashier, "100.00", channel="counter_card")
    first = close_shift(cashier, first, counted_cash=D("200.00"), counted_card=D("100.00"))
    assert first.state == ShiftState.CLOSED
    reverse_payment(manager, paid, "刷卡退货")  # refunded on the terminal
    second = open_shift(cashier, site=a.sites[0], float_amount=D("200.00"))
    take(a, cashier, "250.00", channel="counter_card")
    figures = shift_figures(second)
    # 250.00 taken by card − 100.00 refunded for the earlier shift's payment = 150.00, what
    # the terminal's settlement shows; the closed shift keeps its 100.00
    assert figures.card_earlier_reversed == D("100.00")
    assert figures.expected_card == D("150.00")
    assert Shift.objects.get(pk=first.pk).expected_card == D("100.00")
    closed = close_shift(cashier, second, counted_cash=D("200.00"), counted_card=D("150.00"))
    assert closed.state == ShiftState.CLOSED
    assert shift_figures(closed).card_earlier_reversed == D("100.00")
    listed = [(m.kind, m.amount, m.reference) for m in other_movements(closed)]
    assert listed == [("earlier_reversal", D("-100.00"), str(paid.pk))]
