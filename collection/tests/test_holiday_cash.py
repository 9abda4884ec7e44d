"""The holiday cash rule: on a day the bank is closed a cash top-up of a prepaid account needs a
supervisor's approval and is at most 5,000.00 yuan (the tenant's policy); a make-up working
Saturday is a working day. At 5,000.00 with an approval it is taken, at 5,000.01 or without one
it is refused, and the refusal is recorded for finance."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.runs.services import FourEyesError
from collection.models import CashApproval, CollectionPolicy, Payment, PaymentAttempt
from collection.services.cash_rules import grant_cash_approval
from collection.services.payments import post_payment
from customers.models import Account
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, World, bank_closed_day, unique

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI)


class Counter:
    """A prepaid account at site A1, its cashier on shift and a site manager."""

    def __init__(self, world: TenantWorld) -> None:
        self.world = world
        self.account: Account = world.account(payment_mode="prepaid")
        self.cashier = world.cashier()
        world.on_shift(self.cashier, world.sites[0])
        self.manager = Principal.for_user(world.staff((Role.SITE_MANAGER, world.sites[0])))
        self.day = bank_closed_day()

    def approve(self, amount: str, cashier: Principal | None = None) -> CashApproval:
        user = (cashier or self.cashier).user
        assert user is not None
        return grant_cash_approval(
            self.manager, account=self.account, cashier=user, amount=D(amount),
            business_day=self.day, reason="春节期间预付费充值",
        )  # fmt: skip

    def pay(
        self, amount: str, approval: CashApproval | None = None, on: date | None = None
    ) -> Payment:
        return post_payment(
            self.cashier, account=self.account, channel="counter_cash", amount=D(amount),
            idempotency_key=unique("k"), cash_approval=approval.pk if approval else None,
            now=at(on or self.day),
        ).payment  # fmt: skip


def code_of(error: ValidationError) -> str:
    return next(str(e.code) for errors in error.error_dict.values() for e in errors)


@pytest.fixture
def counter(in_tenant_a: TenantWorld) -> Counter:
    return Counter(in_tenant_a)


def test_a_top_up_of_5000_00_with_an_approval_is_taken_and_uses_it_up(counter: Counter) -> None:
    approval = counter.approve("5000.00")
    payment = counter.pay("5000.00", approval)
    approval.refresh_from_db()
    assert approval.payment_id == payment.pk and approval.used_at is not None
    with pytest.raises(ValidationError) as again:  # one approval, one payment
        counter.pay("10.00", approval)
    assert code_of(again.value) == "approval_invalid"


def test_a_top_up_of_5000_01_is_refused_even_with_an_approval(counter: Counter) -> None:
    approval = counter.approve("5000.00")
    with pytest.raises(ValidationError) as refused:
        counter.pay("5000.01", approval)
    assert code_of(refused.value) == "holiday_cap"
    attempt = PaymentAttempt.objects.get()
    assert (attempt.code, attempt.amount) == ("holiday_cap", "5000.01")
    with pytest.raises(ValidationError) as too_much:  # nor may a supervisor approve it
        counter.approve("5000.01")
    assert code_of(too_much.value) == "holiday_cap"
    assert not Payment.objects.exists()


def test_a_top_up_without_an_approval_is_refused(counter: Counter) -> None:
    with pytest.raises(ValidationError) as refused:
        counter.pay("100.00")
    assert code_of(refused.value) == "approval_required"
    assert PaymentAttempt.objects.get().code == "approval_required"


def test_a_make_up_working_saturday_needs_no_approval(counter: Counter) -> None:
    counter.world.calendar_day(counter.day, kind="workday")  # 调休: the bank opens
    payment = counter.pay("6000.00")
    assert payment.amount == D("6000.00")


def test_a_postpaid_bill_payment_and_a_working_day_are_not_covered(counter: Counter) -> None:
    a = counter.world
    postpaid = a.account()
    paid = post_payment(
        counter.cashier, account=postpaid, channel="counter_cash", amount=D("8000.00"),
        idempotency_key=unique("k"), now=at(counter.day),
    ).payment  # fmt: skip
    assert paid.amount == D("8000.00")
    monday = counter.day + timedelta(days=2)
    assert counter.pay("8000.00", on=monday).amount == D("8000.00")


def test_an_approval_is_for_its_cashier_day_and_amount_at_most(counter: Counter) -> None:
    a = counter.world
    approval = counter.approve("3000.00")
    with pytest.raises(ValidationError) as more:
        counter.pay("3000.01", approval)
    assert code_of(more.value) == "approval_invalid"
    with pytest.raises(ValidationError) as next_day:
        counter.pay("100.00", approval, on=counter.day + timedelta(days=1))  # a Sunday
    assert code_of(next_day.value) == "approval_invalid"
    other = a.cashier()
    a.on_shift(other, a.sites[0])
    with pytest.raises(ValidationError) as not_theirs:
        post_payment(
            other, account=counter.account, channel="counter_cash", amount=D("100.00"),
            idempotency_key=unique("k"), cash_approval=approval.pk, now=at(counter.day),
        )  # fmt: skip
    assert code_of(not_theirs.value) == "approval_invalid"
    # Less than approved: the customer brought less than announced.
    assert counter.pay("2500.00", approval).amount == D("2500.00")


def test_the_cap_and_the_approval_are_the_tenants_policy(counter: Counter) -> None:
    a = counter.world
    CollectionPolicy.objects.create(
        tenant=a.tenant, holiday_cash_cap=D("2000.00"), holiday_cash_approval=False
    )
    assert counter.pay("2000.00").amount == D("2000.00")  # no approval needed here
    with pytest.raises(ValidationError) as refused:
        counter.pay("2000.01")
    assert code_of(refused.value) == "holiday_cap"


def test_nobody_approves_their_own_holiday_cash(counter: Counter) -> None:
    a = counter.world
    both = Principal.for_user(a.staff((Role.CASHIER, None), (Role.SITE_MANAGER, None)))
    assert both.user is not None
    with pytest.raises(FourEyesError):
        grant_cash_approval(
            both, account=counter.account, cashier=both.user, amount=D("100.00"),
            business_day=counter.day, reason="自批",
        )  # fmt: skip
    with pytest.raises(ValidationError) as open_day:
        grant_cash_approval(
            counter.manager, account=counter.account, cashier=both.user, amount=D("100.00"),
            business_day=counter.day + timedelta(days=2), reason="周一",
        )  # fmt: skip
    assert code_of(open_day.value) == "approval_not_needed"


def test_the_api_takes_the_approval_and_refuses_without_it(world: World) -> None:
    a = world.a
    account = a.account(payment_mode="prepaid")
    a.on_shift(world.bob, a.sites[0])
    manager = a.staff((Role.SITE_MANAGER, None))
    day = timezone.localdate(timezone=a.tenant.zone)
    if day.weekday() < 5:
        a.calendar_day(day, kind="holiday")  # a public holiday today: the bank is closed
    body = {"account": account.number, "channel": "counter_cash", "amount": "5000.00"}
    bob = world.client_for(world.bob)
    refused = bob.post("/api/v1/payments/", {**body, "idempotency_key": unique("k")}, "json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "approval_required"
    granted = world.client_for(manager).post(
        "/api/v1/cash-approvals/",
        {"account": account.number, "cashier": world.bob.pk, "amount": "5000.00",
         "business_day": day.isoformat(), "reason": "节日充值"},
        format="json",
    )  # fmt: skip
    assert granted.status_code == 201, granted.content
    paid = bob.post(
        "/api/v1/payments/",
        {**body, "idempotency_key": unique("k"), "cash_approval": granted.json()["id"]},
        format="json",
    )
    assert paid.status_code == 201, paid.content
    listed = world.client_for(manager).get("/api/v1/cash-approvals/").json()["results"]
    assert listed[0]["used"] is True and listed[0]["payment"] == paid.json()["id"]
    own = world.client_for(world.bob).post(
        "/api/v1/cash-approvals/",
        {"account": account.number, "cashier": world.bob.pk, "amount": "100.00",
         "business_day": day.isoformat(), "reason": "x"},
        format="json",
    )  # fmt: skip
    assert own.status_code == 403  # a cashier does not approve holiday cash
    policy = world.client_for(world.alice).patch(
        "/api/v1/collection-policy/current/", {"holiday_cash_cap": "3000.00"}, format="json"
    )
    assert policy.status_code == 200 and policy.json()["holiday_cash_cap"] == "3000.00"
    assert (
        world.client_for(manager)
        .patch("/api/v1/collection-policy/current/", {"holiday_cash_cap": "1.00"}, format="json")
        .status_code
        == 403
    )
