"""Bill runs end to end: pricing from verified period consumption, held-back accounts, bill
checks into the queue, four eyes, issue with due dates, the ledger, resuming after a crash,
credit notes and re-bills."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.bills.corrections import credit_bill, rebill
from billing.bills.review import approve_bill, void_bill
from billing.models import (
    Bill,
    BillKind,
    BillLine,
    BillRun,
    BillState,
    FlaggedBill,
    ReviewState,
    RunState,
)
from billing.runs.drafting import share_by_weights
from billing.runs.numbers import luhn_digit
from billing.runs.services import (
    FourEyesError,
    approve_bill_run,
    open_bill_run,
    price_bill_run,
    start_bill_run,
)
from billing.tariffs import services as tariff_services
from billing.tests.test_tariffs import BEIJING
from customers.models import Account
from ledger.checks import check_ledger
from ledger.models import JournalEntry, JournalLine, LedgerAccount, LedgerKind
from tenancy.models import Site, User
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World
from verification.models import PeriodConsumption
from verification.periods import period_bounds

if TYPE_CHECKING:
    from pytest_django import DjangoCaptureOnCommitCallbacks

PERIOD = "2026-10"


class Billing:
    """A site with the Beijing residential tariff and helpers to give accounts a period."""

    def __init__(self, world: World, site: Site | None = None) -> None:
        self.world = world
        self.site = site or world.a.sites[0]
        tenant_world = world.a
        with tenant_world.active():
            tariff = tariff_services.create_tariff(
                tenant_world.system,
                code=f"RES{self.site.pk}",
                name="居民阶梯",
                utility="electricity",
            )
            tariff_services.add_tariff_version(
                tenant_world.system, tariff, effective_from=date(2020, 1, 1), spec=BEIJING
            )
            if not tariff_services.TariffAssignment.objects.filter(
                customer_class="residential"
            ).exists():
                tariff_services.assign_tariff(
                    tenant_world.system,
                    tariff,
                    effective_from=date(2020, 1, 1),
                    customer_class="residential",
                )
        self.starter = tenant_world.staff((Role.VERIFIER, None))
        self.approver = tenant_world.staff((Role.VERIFIER, None))

    def account(self, total: str | None = "200", period: str = PERIOD, **fields: Any) -> Account:
        account = self.world.a.account(self.site, **fields)
        if total is not None:
            self.period(account, total, period)
        return account

    def period(
        self, account: Account, total: str, period: str = PERIOD, **fields: Any
    ) -> PeriodConsumption:
        start, end = period_bounds(self.site, period)
        return PeriodConsumption.dangerously_unscoped.create(
            tenant=self.world.a.tenant,
            account=account,
            site=self.site,
            period=period,
            starts_at=start,
            ends_at=end,
            status=fields.pop("status", "computed"),
            total=D(total) if fields.get("hold_reason") is None else None,
            **fields,
        )

    def as_(self, user: User) -> Principal:
        return Principal.for_user(user)

    def run(self, period: str = PERIOD, **options: Any) -> BillRun:
        with self.world.a.active():
            run = open_bill_run(self.as_(self.starter), self.site, period)
            return price_bill_run(self.as_(self.starter), run.pk, **options)

    def approve(self, run: BillRun, **options: Any) -> BillRun:
        with self.world.a.active():
            return approve_bill_run(self.as_(self.approver), run.pk, **options)


@pytest.fixture
def billing(world: World) -> Billing:
    return Billing(world)


def balance(kind: str, account: Account | None = None, **fields: Any) -> D:
    ledger = LedgerAccount.dangerously_unscoped.filter(kind=kind, account=account, **fields).first()
    return ledger.balance if ledger else D("0.00")


def test_a_run_prices_postpaid_accounts_and_lists_the_held_back_with_their_reasons(
    billing: Billing,
) -> None:
    priced = billing.account("200")
    held = billing.account(None)
    billing.period(held, "0", status="held_back", hold_reason="suspect reading 17 of meter 4")
    missing = billing.account(None)
    billing.account("999", payment_mode="prepaid")
    run = billing.run(chunk=1)  # an account a chunk: the holds of several chunks add up
    assert (run.state, run.total, run.done, run.bills) == (RunState.DRAFTED, 3, 3, 1)
    assert run.held_back == {
        held.number: "suspect reading 17 of meter 4",
        missing.number: "本期用量尚未计算",  # no period consumption computed
    }
    bill = Bill.dangerously_unscoped.get(run=run)
    assert bill.account_id == priced.pk and bill.state == BillState.DRAFT
    # 200 kWh in tier 1: 200 × 0.4883 = 97.66; tax 97.66 − 97.66/1.13 = 11.2352 → 11.24.
    assert (bill.total, bill.tax_total) == (D("97.66"), D("11.24"))
    # The tenant's first bill: the year and its own serial, and a reference with a check digit.
    assert bill.number == f"{timezone.localdate().year}00000001"
    assert bill.payment_reference == bill.number + luhn_digit(bill.number)
    assert (bill.starts_on, bill.ends_on) == (date(2026, 9, 1), date(2026, 9, 30))
    assert bill.consumption["estimated"] is False and bill.consumption["total"] == "200.000"
    assert list(
        BillLine.dangerously_unscoped.filter(bill=bill).values_list("label", "quantity")
    ) == [("第1档电量电费", D("200.000"))]


def test_a_run_with_no_account_to_bill_is_refused(billing: Billing) -> None:
    with billing.world.a.active(), pytest.raises(ValidationError) as refused:
        open_bill_run(billing.as_(billing.starter), billing.site, PERIOD)
    assert refused.value.code == "nothing_to_bill"
    assert not BillRun.dangerously_unscoped.filter(site=billing.site).exists()


def test_nobody_approves_a_run_they_started(billing: Billing) -> None:
    billing.account("200")
    run = billing.run()
    with billing.world.a.active(), pytest.raises(FourEyesError):
        approve_bill_run(billing.as_(billing.starter), run.pk)
    assert Bill.dangerously_unscoped.get(run=run).state == BillState.DRAFT


def test_issuing_sets_the_due_date_to_a_working_day_and_posts_to_the_ledger(
    billing: Billing,
) -> None:
    account = billing.account("200")
    today = timezone.localdate(timezone=billing.world.a.tenant.zone)
    due = today + timedelta(days=15)
    billing.world.a.calendar_day(due, "holiday")
    expected_due = due + timedelta(days=1)
    while expected_due.weekday() >= 5:
        expected_due += timedelta(days=1)
    run = billing.approve(billing.run())
    assert (run.state, run.issued) == (RunState.ISSUED, 1)
    bill = Bill.dangerously_unscoped.get(run=run)
    assert (bill.state, bill.issue_date, bill.due_date) == (BillState.ISSUED, today, expected_due)
    assert bill.number and bill.entry_id
    # Dr receivable 97.66; Cr energy revenue 86.42 (97.66 − 11.24); Cr VAT payable 11.24.
    assert balance(LedgerKind.RECEIVABLE, account) == D("97.66")
    assert balance(LedgerKind.REVENUE, utility="electricity", component="energy") == D("-86.42")
    assert balance(LedgerKind.VAT_PAYABLE, utility="electricity") == D("-11.24")


def test_the_books_are_written_in_chinese_whoever_issues(billing: Billing) -> None:
    account = billing.account("200")
    with translation.override("en"):  # an English-speaking clerk runs and approves
        run = billing.approve(billing.run())
    names = dict(LedgerAccount.dangerously_unscoped.values_list("kind", "name"))
    assert names[LedgerKind.RECEIVABLE] == f"客户应收 {account.number}"
    assert names[LedgerKind.REVENUE] == "收入 电 电度电费"
    assert names[LedgerKind.VAT_PAYABLE] == "应交增值税 电"
    entry_id = Bill.dangerously_unscoped.get(run=run).entry_id
    assert entry_id is not None
    entry = JournalEntry.dangerously_unscoped.get(pk=entry_id)
    assert entry.memo == f"{PERIOD} 账单 1 张"


def test_zero_and_unusual_bills_wait_in_the_queue_for_a_second_verifier(billing: Billing) -> None:
    usual = billing.account("200")
    zero = billing.account("0", opened_on=date(2026, 9, 1))  # moved in: 2026-10 is its first
    jump = billing.account("900")
    for month in ("2026-07", "2026-08", "2026-09"):
        billing.period(jump, "100", month)
        billing.period(usual, "200", month)
    for month in ("2026-07", "2026-08", "2026-09"):
        run = billing.approve(billing.run(month))
    run = billing.run()
    assert run.flagged == 2
    items = {item.bill.account_id: item for item in FlaggedBill.dangerously_unscoped.all()}
    assert items[zero.pk].first_check == "zero_bill"
    # The last three bills averaged 48.83; 900 kWh costs far more than 3 × that.
    assert items[jump.pk].first_check == "far_from_history"
    run = billing.approve(run)
    assert run.state == RunState.ISSUED and run.issued == 1
    flagged = items[zero.pk].bill
    assert flagged.state == BillState.DRAFT
    with billing.world.a.active(), pytest.raises(FourEyesError):
        approve_bill(billing.as_(billing.starter), flagged)
    amount = run.amount
    with billing.world.a.active():
        approve_bill(billing.as_(billing.approver), flagged)
        void_bill(billing.as_(billing.approver), items[jump.pk].bill, "meter swapped, site visit")
    flagged.refresh_from_db()
    assert flagged.state == BillState.ISSUED
    voided = Bill.dangerously_unscoped.get(pk=items[jump.pk].bill_id)
    assert voided.state == BillState.VOID and voided.total > 0
    assert FlaggedBill.dangerously_unscoped.filter(state=ReviewState.OPEN).count() == 0
    # The run's counters: two issued (one after review), one voided; its amount is its live bills'.
    run.refresh_from_db()
    assert (run.bills, run.issued, run.voided) == (3, 2, 1)
    assert run.amount == amount - voided.total
    live = Bill.dangerously_unscoped.filter(run=run).exclude(state=BillState.VOID)
    assert run.amount == sum(bill.total for bill in live)


def test_annual_tiers_continue_from_the_years_earlier_bills(billing: Billing) -> None:
    account = billing.account("2800", "2026-09")
    billing.period(account, "200", PERIOD)
    billing.approve(billing.run("2026-09"))
    billing.run()
    bill = Bill.dangerously_unscoped.get(account=account, period=PERIOD)
    # 80 kWh left in tier 1 (39.06), 120 in tier 2 (64.60).
    assert bill.total == D("103.66")


def _bills_and_ledger(site_id: int) -> list[tuple]:
    bills = Bill.dangerously_unscoped.filter(site_id=site_id).order_by("account__premise__room")
    rows = []
    for bill in bills:
        lines = list(
            BillLine.dangerously_unscoped.filter(bill=bill)
            .order_by("position")
            .values_list("label", "amount")
        )
        receivable = balance(LedgerKind.RECEIVABLE, bill.account)
        rows.append((bill.state, bill.total, bill.tax_total, tuple(lines), receivable))
    return rows


class Crash(Exception):
    pass


def test_a_run_interrupted_between_any_chunks_ends_as_an_uninterrupted_one(world: World) -> None:
    sites = [world.a.sites[0], world.a.site()]
    runs = [Billing(world, site) for site in sites]
    for index in range(7):
        for billing in runs:
            premise = world.a.premise(billing.site, room=f"R{index}")
            billing.account(str(100 + 173 * index), premise=premise)
    runs[0].approve(runs[0].run(chunk=2))
    crashes = iter(range(100))

    def crash_after_some(run: BillRun) -> None:
        if next(crashes) in (0, 2):
            raise Crash

    with world.a.active():
        starter, approver = runs[1].as_(runs[1].starter), runs[1].as_(runs[1].approver)
        run = open_bill_run(starter, sites[1], PERIOD)
        for _attempt in range(3):
            try:
                price_bill_run(starter, run.pk, chunk=2, progress=crash_after_some)
            except Crash:
                continue
        for _attempt in range(4):
            try:
                approve_bill_run(approver, run.pk, chunk=2, progress=crash_after_some)
            except Crash:
                continue
    assert BillRun.dangerously_unscoped.get(pk=run.pk).state == RunState.ISSUED
    assert _bills_and_ledger(sites[1].pk) == _bills_and_ledger(sites[0].pk)
    assert Bill.dangerously_unscoped.filter(site=sites[1]).count() == 7


def test_starting_a_run_prices_it_after_commit_and_a_second_start_is_refused(
    billing: Billing,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    eager_tasks: None,
) -> None:
    billing.account("200")
    with billing.world.a.active(), django_capture_on_commit_callbacks(execute=True):
        run = start_bill_run(billing.as_(billing.starter), billing.site, PERIOD)
    with billing.world.a.active():
        run.refresh_from_db()
        assert (run.state, run.bills) == (RunState.DRAFTED, 1)
        with pytest.raises(ValidationError, match="已存在"):
            start_bill_run(billing.as_(billing.starter), billing.site, PERIOD)


def test_a_credit_note_reverses_an_issued_bill_and_a_rebill_waits_for_a_second_person(
    billing: Billing,
) -> None:
    account = billing.account("200")
    billing.approve(billing.run())
    bill = Bill.dangerously_unscoped.get(account=account)
    PeriodConsumption.dangerously_unscoped.filter(account=account).update(total=D("150"))
    corrector, second = billing.as_(billing.approver), billing.as_(billing.starter)
    with billing.world.a.active():
        note, again = rebill(corrector, bill, "reading corrected")
        with pytest.raises(ValidationError, match="待审批") as pending:
            credit_bill(corrector, bill, "twice")
        assert pending.value.code == "credit_pending"
    # Nothing moves until a second person approves: the credit note is a draft for review.
    assert (note.kind, note.state, note.total) == (
        BillKind.CREDIT_NOTE,
        BillState.DRAFT,
        D("-97.66"),
    )
    assert balance(LedgerKind.RECEIVABLE, account) == D("97.66")
    # 150 × 0.4883 = 73.245 → 73.25, not yet owed: the re-bill is a draft for review too.
    assert (again.kind, again.state, again.total) == (BillKind.REBILL, BillState.DRAFT, D("73.25"))
    with billing.world.a.active():
        with pytest.raises(FourEyesError):
            approve_bill(corrector, note)
        with pytest.raises(ValidationError) as early:
            approve_bill(second, again)  # the customer must never owe both
        assert early.value.code == "credit_pending"
        approve_bill(second, note)
        with pytest.raises(ValidationError, match="已冲红"):
            credit_bill(corrector, bill, "twice")
    assert balance(LedgerKind.RECEIVABLE, account) == D("0.00")
    with billing.world.a.active(), pytest.raises(FourEyesError):
        approve_bill(corrector, again)
    with billing.world.a.active():
        approve_bill(second, again)
    assert balance(LedgerKind.RECEIVABLE, account) == D("73.25")
    bill.refresh_from_db()
    assert (bill.state, bill.total) == (BillState.ISSUED, D("97.66"))  # never edited


def test_common_area_consumption_is_shared_by_floor_area_as_a_line(billing: Billing) -> None:
    world = billing.world
    members = [
        billing.account("100", premise=world.a.premise(billing.site, floor_area=D(area)))
        for area in ("80", "100", "120")
    ]
    stairwell = billing.account("300")
    with world.a.active():
        tariff_services.create_common_area(
            world.a.system, site=billing.site, name="1号楼公摊", account=stairwell,
            method="floor_area", members=members,
        )  # fmt: skip
    run = billing.run()
    assert run.bills == 3  # the stairwell itself is not billed
    shares = [
        BillLine.dangerously_unscoped.get(bill__account=member, component="common_area").quantity
        for member in members
    ]
    assert shares == [D("80"), D("100"), D("120")]


def test_shares_add_up_to_the_total_exactly() -> None:
    assert share_by_weights(D("100"), {1: D(1), 2: D(1), 3: D(1)}) == {
        1: D("33.334"),
        2: D("33.333"),
        3: D("33.333"),
    }


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(totals=st.lists(st.decimals(min_value=0, max_value=9000, places=3), min_size=1, max_size=4))
def test_every_posted_bill_balances_and_cached_balances_match(
    world: World, totals: list[D]
) -> None:
    billing = Billing(world, world.a.site())
    for total in totals:
        billing.account(str(total))
    billing.approve(billing.run())
    assert check_ledger(world.a.tenant) == []
    for bill in Bill.dangerously_unscoped.filter(site=billing.site, state=BillState.ISSUED):
        assert bill.entry_id is not None or bill.total == 0
        if bill.entry_id is not None:
            amounts = JournalLine.dangerously_unscoped.filter(entry_id=bill.entry_id).values_list(
                "amount", flat=True
            )
            assert sum(amounts) == 0
            mine = JournalLine.dangerously_unscoped.get(
                entry_id=bill.entry_id, reference=f"bill:{bill.pk}"
            )
            assert mine.amount == bill.total


def test_a_flagged_bill_is_listed_for_review_and_approved_there(billing: Billing) -> None:
    billing.account("0")
    run = billing.run()
    flag = FlaggedBill.dangerously_unscoped.get(bill__run=run)
    alice = billing.world.client_for(billing.world.alice)
    listed = alice.get("/api/v1/flagged-bills/", {"check": "zero_bill", "state": "open"})
    assert [row["bill"]["id"] for row in listed.json()["results"]] == [flag.bill_id]
    assert alice.get("/api/v1/flagged-bills/", {"check": "negative_bill"}).json()["results"] == []
    unknown = alice.post("/api/v1/flagged-bills/bulk-approve/", {"ids": [flag.pk, 999999]})
    assert unknown.status_code == 400 and "999999" in str(unknown.json())
    early = alice.post(f"/api/v1/flagged-bills/{flag.pk}/approve/")
    assert early.status_code == 400 and early.json()["error"]["code"] == "run_not_approved"
    billing.approve(run)
    starter = billing.world.client_for(billing.starter)
    own = starter.post("/api/v1/flagged-bills/bulk-approve/", {"ids": [flag.pk]})
    assert own.status_code == 400
    # The refusal names the bill by its number, as the clerk knows it.
    assert own.json()["error"]["fields"]["ids"][0].startswith(f"{flag.bill.number}: ")
    assert Bill.dangerously_unscoped.get(pk=flag.bill_id).state == BillState.DRAFT
    response = alice.post(f"/api/v1/flagged-bills/{flag.pk}/approve/")
    assert response.status_code == 200 and response.json()["state"] == "resolved"
    assert response.json()["resolution"] == "approved"
    assert Bill.dangerously_unscoped.get(pk=flag.bill_id).state == BillState.ISSUED
    again = alice.post(f"/api/v1/flagged-bills/{flag.pk}/approve/")
    assert again.status_code == 400
    twice = alice.post(f"/api/v1/bill-runs/{run.pk}/approve/")
    assert twice.status_code == 400 and twice.json()["error"]["code"] == "issued"
