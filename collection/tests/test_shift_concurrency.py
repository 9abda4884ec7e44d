"""Shifts under real concurrency (PostgreSQL, threads with their own connections): two opens by
one cashier make one shift; payments racing the close either join the shift before it closes
(and are in its expected cash) or are refused after: never a payment in a closed shift; payments
racing for one holiday cash approval use it once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from collection.models import Payment, Shift, ShiftState
from collection.services.cash_rules import grant_cash_approval
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.shifts import close_shift, open_shift
from tenancy.context import use_tenant
from tests.concurrency import run_together
from tests.world import World, bank_closed_day, unique

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_opens_of_a_shift_by_one_cashier_at_once_make_one_shift(world: World) -> None:
    a = world.a
    cashier = a.cashier()

    def open_one(index: int) -> int | str:
        try:
            return open_shift(cashier, site=a.sites[0], float_amount=Decimal("100.00")).pk
        except PaymentConflict as exc:
            return str(exc.code)

    results, errors = run_together(2, open_one, a.tenant)
    assert not errors, errors
    assert sorted(map(str, results))[-1] == "shift_open"  # one opened, the other refused
    with use_tenant(a.tenant):
        assert Shift.objects.filter(cashier_id=cashier.id, state=ShiftState.OPEN).count() == 1


def test_a_payment_racing_the_close_joins_before_it_or_is_refused_after(world: World) -> None:
    a = world.a
    cashier = a.cashier()
    accounts = [a.account() for _ in range(8)]
    shift = a.on_shift(cashier, a.sites[0], "100.00")

    def work(index: int) -> str:
        if index == 8:
            with use_tenant(a.tenant):
                close_shift(
                    cashier, shift, counted_cash=Decimal("100.00"), counted_card=Decimal("0.00")
                )
            return "closed"
        try:
            post_payment(
                cashier, account=accounts[index], channel="counter_cash",
                amount=Decimal("10.00"), idempotency_key=unique("k"),
            )  # fmt: skip
        except ValidationError as exc:
            assert exc.error_list[0].code == "no_open_shift"
            return "refused"
        return "paid"

    results, errors = run_together(9, work, a.tenant)
    assert not errors, errors
    paid = results.count("paid")
    assert paid + results.count("refused") == 8
    with use_tenant(a.tenant):
        closed = Shift.objects.get(pk=shift.pk)
        in_shift = Payment.objects.filter(shift=shift)
        assert in_shift.count() == paid == closed.cash_payments
        assert Payment.objects.filter(shift__isnull=True).count() == 0
        # every payment that joined is in the expected cash: 100.00 + 10.00 a payment
        assert closed.expected_cash == Decimal("100.00") + Decimal("10.00") * paid
        taken = in_shift.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
        assert closed.difference_cash == -taken
        assert all(p.received_at <= closed.closed_at for p in in_shift)  # type: ignore[operator]


def test_two_payments_racing_for_one_holiday_approval_use_it_once(world: World) -> None:
    a = world.a
    account = a.account(payment_mode="prepaid")
    cashier = a.cashier()
    a.on_shift(cashier, a.sites[0])
    assert cashier.user is not None
    day = bank_closed_day()
    with use_tenant(a.tenant):
        approval = grant_cash_approval(
            a.system, account=account, cashier=cashier.user, amount=Decimal("5000.00"),
            business_day=day, reason="节假日充值",
        )  # fmt: skip
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo("Asia/Shanghai"))

    def pay(index: int) -> str:
        try:
            post_payment(
                cashier, account=account, channel="counter_cash", amount=Decimal("5000.00"),
                idempotency_key=unique("k"), cash_approval=approval.pk, now=noon,
            )  # fmt: skip
        except ValidationError as exc:
            return next(str(e.code) for errors in exc.error_dict.values() for e in errors)
        return "paid"

    results, errors = run_together(4, pay, a.tenant)
    assert not errors, errors
    assert sorted(results) == ["approval_invalid"] * 3 + ["paid"]
    with use_tenant(a.tenant):
        assert Payment.objects.filter(account=account).count() == 1
