"""Billing month after month: catch-up (supplementary) runs, the order of an account's periods
in the tier year, re-pricing after a correction of an earlier period, go-live opening
balances, per-tenant bill numbers, and site-limited tariff assignments. Worked by hand with the
Beijing residential tariff: 0.4883 yuan/kWh to 2,880 kWh a year, 0.5383 to 4,800, 0.7883 above."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from billing.bills.corrections import credit_bill, rebill
from billing.bills.review import approve_bill, void_bill
from billing.models import (
    Bill,
    BillingSettings,
    BillKind,
    BillLine,
    BillRun,
    BillState,
    OpeningBalance,
    Tariff,
)
from billing.opening import import_opening, rows_from_csv
from billing.runs.numbers import is_valid_reference
from billing.runs.services import approve_bill_run, open_bill_run, price_bill_run
from billing.tariffs import services as tariff_services
from billing.tests.test_bill_runs import Billing, balance
from ledger.checks import check_ledger
from ledger.models import LedgerKind
from tenancy.models import Site
from tests.world import World
from verification.models import PeriodConsumption, VerificationItem
from verification.periods import compute_periods
from verification.tests.helpers import checks, lay

if TYPE_CHECKING:
    from pytest_django import DjangoCaptureOnCommitCallbacks

pytestmark = [pytest.mark.django_db]
CN = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def billing(world: World) -> Billing:
    return Billing(world)


def _bill(account_id: int, period: str, kind: str = BillKind.BILL) -> Bill:
    return Bill.dangerously_unscoped.exclude(state=BillState.VOID).get(
        account_id=account_id, period=period, kind=kind
    )


def _class_tariff(world: World, code: str, utility: str, price: str, site: Site) -> Tariff:
    """A flat tariff for the residential class, limited to ``site``, from 2020."""
    with world.a.active():
        tariff = tariff_services.create_tariff(
            world.a.system, code=code, name=code, utility=utility
        )
        tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=date(2020, 1, 1),
            spec={"energy": {"kind": "flat", "price": price}},
        )  # fmt: skip
        tariff_services.assign_tariff(
            world.a.system, tariff, effective_from=date(2020, 1, 1),
            customer_class="residential", sites=[site],
        )  # fmt: skip
    return tariff


def _supplementary(billing: Billing, period: str) -> BillRun:
    with billing.world.a.active():
        run = open_bill_run(billing.as_(billing.starter), billing.site, period, supplementary=True)
        return price_bill_run(billing.as_(billing.starter), run.pk)


def test_the_clerks_case_an_account_held_back_is_billed_by_a_catch_up_and_tiers_count_it(
    billing: Billing,
    eager_tasks: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    """The clerk's trial, through the readings, the verification queue and the API.

    Readings 0 / 100 / 2,100 / 4,100 kWh on 1 December 2024, 1 January, 1 February and 1 March
    2025 (reading day 1): period 2025-02 (January) uses 2,000 kWh, 2025-03 (February) 2,000.
    The 2,100 is a spike, so 2025-02 holds the account back. Once a verifier approves it, the
    2025-02 run cannot be started again (it exists); a supplementary run bills January:
    2,000 × 0.4883 = 976.60. February then crosses tier 1 after January's 2,000 kWh:
    880 × 0.4883 = 429.704 → 429.70, 1,120 × 0.5383 = 602.896 → 602.90; 1,032.60, not the
    976.60 it would cost priced from zero in the tier year.
    """
    world = billing.world
    account = billing.account(None, opened_on=date(2024, 12, 1))
    meter = world.a.meter(billing.site, account=account)
    lay(
        meter,
        [
            {"taken_at": datetime(2024, 12, 1, tzinfo=CN), "total": "0.00"},
            {"taken_at": datetime(2025, 1, 1, tzinfo=CN), "total": "100.00"},
            {"taken_at": datetime(2025, 2, 1, tzinfo=CN), "total": "2100.00"},
            {"taken_at": datetime(2025, 3, 1, tzinfo=CN), "total": "4100.00"},
        ],
    )
    with world.a.active():
        found = checks(meter)
    assert found[2] == ("suspect", ["spike", "gap"]), found  # a month apart: a gap too
    starter = world.client_for(billing.starter)
    approver = world.client_for(billing.approver)
    with world.a.active():
        compute_periods(world.a.system, billing.site, "2025-02")
    body = {"site": billing.site.pk, "period": "2025-02"}
    with django_capture_on_commit_callbacks(execute=True):
        run = starter.post("/api/v1/bill-runs/", body, format="json").json()
    run = starter.get(f"/api/v1/bill-runs/{run['id']}/").json()  # priced once it committed
    held = f"可疑读数：表计 {meter.serial_number}，2025-02-01 00:00"  # suspect reading
    assert run["held_back"] == {account.number: held}
    with django_capture_on_commit_callbacks(execute=True):
        assert approver.post(f"/api/v1/bill-runs/{run['id']}/approve/").status_code == 202

    # The verifier approves the reading; the period recomputes to 2,000 kWh.
    item = VerificationItem.dangerously_unscoped.get(reading__meter=meter)
    assert approver.post(f"/api/v1/verification-queue/{item.pk}/approve/").status_code == 200
    with world.a.active():
        compute_periods(world.a.system, billing.site, "2025-02")
    period = PeriodConsumption.dangerously_unscoped.get(account=account, period="2025-02")
    assert (period.status, period.total) == ("computed", D("2000.000"))

    again = starter.post("/api/v1/bill-runs/", body, format="json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "exists"
    with django_capture_on_commit_callbacks(execute=True):
        response = starter.post(
            "/api/v1/bill-runs/", {**body, "supplementary": True}, format="json"
        )
    assert response.status_code == 201, response.json()
    catch_up = starter.get(f"/api/v1/bill-runs/{response.json()['id']}/").json()
    assert (catch_up["supplementary"], catch_up["total"], catch_up["bills"]) == (True, 1, 1)
    with django_capture_on_commit_callbacks(execute=True):
        approver.post(f"/api/v1/bill-runs/{catch_up['id']}/approve/")
    january = _bill(account.pk, "2025-02")
    assert (january.state, january.total, january.supplementary) == (
        BillState.ISSUED,
        D("976.60"),
        True,
    )

    with world.a.active():
        compute_periods(world.a.system, billing.site, "2025-03")
    with django_capture_on_commit_callbacks(execute=True):
        march = starter.post(
            "/api/v1/bill-runs/", {"site": billing.site.pk, "period": "2025-03"}, format="json"
        ).json()
    assert starter.get(f"/api/v1/bill-runs/{march['id']}/").json()["held_back"] == {}
    february = _bill(account.pk, "2025-03")
    assert february.total == D("1032.60")
    amounts = sorted(
        BillLine.dangerously_unscoped.filter(bill=february).values_list("amount", flat=True)
    )
    assert amounts == [D("429.70"), D("602.90")]
    shown = approver.get(f"/api/v1/bills/{february.pk}/").json()
    assert [entry["period"] for entry in shown["history"]] == ["2025-02", "2025-03"]
    assert shown["ends_on"] == "2025-02-28"  # the last day, inclusive, as printed bills say
    assert shown["opening"][0]["taken_at"] == "2025-02-01T00:00:00+08:00"
    assert shown["opening"][0]["serial_number"] == meter.serial_number


def test_a_later_period_waits_for_an_earlier_one_and_one_catch_up_bills_both_in_order(
    billing: Billing,
) -> None:
    """2,000 kWh in each of 2026-08, -09 and -10 of an account held back in -09: the -10 run
    holds it (earlier period not billed); a catch-up of -10 bills -09 then -10, each after
    the earlier ones in the tier year: -09 880 × 0.4883 + 1,120 × 0.5383 = 1,032.60; -10
    800 × 0.5383 + 1,200 × 0.7883 = 430.64 + 945.96 = 1,376.60."""
    account = billing.account("2000", "2026-08")
    billing.period(account, "0", "2026-09", status="held_back", hold_reason="表计待核实")
    billing.period(account, "2000", "2026-10")
    billing.approve(billing.run("2026-08"))
    run = billing.approve(billing.run("2026-09"))
    assert run.held_back == {account.number: "表计待核实"}
    run = billing.run("2026-10")
    assert run.held_back == {account.number: "上期未出账 (2026-09)"}  # earlier period not billed

    PeriodConsumption.dangerously_unscoped.filter(account=account, period="2026-09").update(
        status="computed", total=D("2000"), hold_reason=""
    )
    with billing.world.a.active(), pytest.raises(ValidationError) as refused:
        open_bill_run(billing.as_(billing.starter), billing.site, "2026-10", supplementary=True)
    assert refused.value.code == "no_issued_run"  # the period's own run comes first
    billing.approve(run)
    catch_up = billing.approve(_supplementary(billing, "2026-10"))
    assert (catch_up.bills, catch_up.issued, catch_up.held_back) == (2, 2, {})
    assert _bill(account.pk, "2026-09").total == D("1032.60")
    assert _bill(account.pk, "2026-10").total == D("1376.60")
    assert balance(LedgerKind.RECEIVABLE, account) == D("976.60") + D("1032.60") + D("1376.60")
    # Nothing is left to catch up: another supplementary run is refused, it has no account.
    with billing.world.a.active(), pytest.raises(ValidationError) as nothing:
        _supplementary(billing, "2026-10")
    assert nothing.value.code == "nothing_to_bill"
    assert check_ledger(billing.world.a.tenant) == []


def test_a_rebill_of_an_earlier_period_reprices_the_later_bills_of_the_tier_year(
    billing: Billing,
) -> None:
    """August 2,000 kWh, September 1,000: September is 880 × 0.4883 + 120 × 0.5383 = 429.70 +
    64.60 = 494.30. August re-read as 1,000 kWh: September now lies in tier 1 (1,000 ×
    0.4883 = 488.30) and gets a credit note and a re-bill for a second person."""
    account = billing.account("2000", "2026-08")
    billing.period(account, "1000", "2026-09")
    billing.approve(billing.run("2026-08"))
    billing.approve(billing.run("2026-09"))
    september = _bill(account.pk, "2026-09")
    assert september.total == D("494.30")
    PeriodConsumption.dangerously_unscoped.filter(account=account, period="2026-08").update(
        total=D("1000")
    )
    corrector, second = billing.as_(billing.approver), billing.as_(billing.starter)
    with billing.world.a.active():
        note, again = rebill(corrector, _bill(account.pk, "2026-08"), "抄表错误")
    assert again.total == D("488.30")  # 1,000 × 0.4883
    repriced = Bill.dangerously_unscoped.get(corrects=september, kind=BillKind.REBILL)
    assert (repriced.total, repriced.state, repriced.cause_id) == (
        D("488.30"),
        BillState.DRAFT,
        note.pk,
    )
    september_note = Bill.dangerously_unscoped.get(corrects=september, kind=BillKind.CREDIT_NOTE)
    with billing.world.a.active():
        with pytest.raises(ValidationError) as caused:
            void_bill(second, repriced, "no")
        assert caused.value.code == "caused"
        for bill in (note, again, september_note, repriced):
            approve_bill(second, bill)
    assert balance(LedgerKind.RECEIVABLE, account) == D("488.30") + D("488.30")
    assert check_ledger(billing.world.a.tenant) == []


def test_voiding_a_correction_voids_its_repricing_too(billing: Billing) -> None:
    account = billing.account("2000", "2026-08")
    billing.period(account, "1000", "2026-09")
    billing.approve(billing.run("2026-08"))
    billing.approve(billing.run("2026-09"))
    corrector = billing.as_(billing.approver)
    with billing.world.a.active():
        note = credit_bill(corrector, _bill(account.pk, "2026-08"), "不应出账")
        later = Bill.dangerously_unscoped.filter(cause=note)
        assert later.count() == 2  # September's credit note and re-bill: all in tier 1 now
        void_bill(billing.as_(billing.starter), note, "撤回")
    assert set(later.values_list("state", flat=True)) == {BillState.VOID}


def test_a_credit_of_an_earlier_period_is_refused_while_a_later_bill_awaits_approval(
    billing: Billing,
) -> None:
    account = billing.account("2000", "2026-08")
    billing.period(account, "1000", "2026-09")
    billing.approve(billing.run("2026-08"))
    billing.run("2026-09")  # drafted, not approved
    with billing.world.a.active(), pytest.raises(ValidationError) as refused:
        credit_bill(billing.as_(billing.approver), _bill(account.pk, "2026-08"), "错")
    assert refused.value.code == "later_draft"
    assert not Bill.dangerously_unscoped.filter(kind=BillKind.CREDIT_NOTE).exists()


def test_opening_balances_post_arrears_and_annual_tiers_count_the_imported_kwh(
    billing: Billing, tmp_path: Path
) -> None:
    """Go-live 1 September 2026 with 2,500 kWh used this year: of October's 600 kWh, 380 are
    left in tier 1 (185.55) and 220 fall in tier 2 (118.43): 303.98."""
    tenant = billing.world.a.tenant
    account = billing.account("600")
    other = billing.account("100")
    rows = [
        {"account": account.number, "arrears": "88.50", "tier_kwh": "2500"},
        {"account": other.number, "arrears": "-20", "tier_kwh": "0"},
    ]
    with billing.world.a.active():
        with pytest.raises(ValidationError) as early:
            import_opening(billing.world.a.system, tenant, rows)
        assert early.value.code == "no_go_live"
        settings = BillingSettings.stored_for_tenant(tenant)
        settings.go_live_on = date(2026, 9, 1)
        settings.save()
        bad = [*rows, {"account": "NOPE", "arrears": "1.234", "tier_kwh": "-1"}, rows[0]]
        with pytest.raises(ValidationError) as refused:
            import_opening(billing.world.a.system, tenant, bad)
        assert refused.value.message_dict["rows"] == [
            "第 4 行：没有户号 NOPE; 欠费须为元，最多 2 位小数; "
            "年累计电量须为千瓦时，不为负，最多 3 位小数",
            f"第 5 行：户号 {account.number} 出现了两次",
        ]
    assert not OpeningBalance.dangerously_unscoped.exists()  # all or nothing
    path = tmp_path / "opening.csv"
    path.write_text(
        f"户号,欠费,年累计电量\n{account.number},88.50,2500\n{other.number},-20,0\n",
        encoding="utf-8",
    )
    call_command("import_opening", str(path), "--tenant", tenant.slug)
    with pytest.raises(CommandError, match=account.number):
        call_command("import_opening", str(path), "--tenant", tenant.slug)  # not twice
    assert balance(LedgerKind.RECEIVABLE, account) == D("88.50")
    assert balance(LedgerKind.RECEIVABLE, other) == D("-20.00")
    assert balance(LedgerKind.CLEARING, component="opening") == D("-68.50")
    billing.approve(billing.run())
    assert _bill(account.pk, "2026-10").total == D("303.98")
    assert check_ledger(tenant) == []


def test_bill_numbers_are_the_tenants_own_and_each_bill_has_its_own_reference(
    world: World,
) -> None:
    first = Billing(world)
    account = first.account("200")
    first.approve(first.run())
    bill = _bill(account.pk, "2026-10")
    with world.a.active():
        note, again = rebill(first.as_(first.approver), bill, "抄错")
    references = {bill.payment_reference, again.payment_reference}
    assert len(references) == 2 and all(is_valid_reference(ref) for ref in references)
    assert note.payment_reference == ""  # nothing to pay on a credit note
    # The year and the tenant's own serial: its first bill is 1, whatever other tenants bill.
    assert bill.number[4:] == "00000001" and bill.number < note.number < again.number
    assert not is_valid_reference(
        bill.payment_reference[:-1] + "0" * (bill.payment_reference[-1] != "0")
    )


def test_a_class_tariff_limited_to_a_site_wins_there_and_accounts_are_assigned_in_bulk(
    billing: Billing,
) -> None:
    world = billing.world
    other_site = world.a.sites[1]
    flat = _class_tariff(world, "FLAT2", "electricity", "0.6000", other_site)
    with world.a.active(), pytest.raises(ValidationError, match="重叠"):
        tariff_services.assign_tariff(
            world.a.system, flat, effective_from=date(2025, 1, 1),
            customer_class="residential", sites=[other_site],
        )  # fmt: skip
    here = billing.account("100")
    there = Billing(world, other_site)
    away = there.account("100")
    billing.run()
    there.run()
    assert _bill(here.pk, "2026-10").total == D("48.83")  # the every-site Beijing tariff
    assert _bill(away.pk, "2026-10").total == D("60.00")  # 100 × 0.6000 at its own site

    client = world.client_for(world.a.staff(("tenant_admin", None)))
    accounts = [world.a.account(billing.site) for _ in range(3)]
    body = {"tariff": flat.pk, "accounts": [a.pk for a in accounts], "effective_from": "2027-01-01"}
    assert client.post("/api/v1/tariff-assignments/bulk/", body, format="json").status_code == 201
    again = client.post(
        "/api/v1/tariff-assignments/bulk/",
        {**body, "accounts": [world.a.account(billing.site).pk, accounts[0].pk]},
        format="json",
    )
    assert again.status_code == 400
    assert accounts[0].number in str(again.json()["error"]["fields"]["accounts"])
    assert (
        tariff_services.TariffAssignment.dangerously_unscoped.filter(
            tariff=flat, account__isnull=False
        ).count()
        == 3
    )  # the refused batch added none
    # By account number, as a clerk has them; an unknown number is named, both ways refused.
    fresh = world.a.account(billing.site)
    by_number = {"tariff": flat.pk, "effective_from": "2027-01-01"}
    unknown = client.post(
        "/api/v1/tariff-assignments/bulk/",
        {**by_number, "account_numbers": [fresh.number, "NO-SUCH-1"]},
        format="json",
    )
    assert unknown.status_code == 400 and "NO-SUCH-1" in unknown.content.decode()
    both = {**by_number, "account_numbers": [fresh.number], "accounts": [fresh.pk]}
    assert client.post("/api/v1/tariff-assignments/bulk/", both, format="json").status_code == 400
    made = client.post(
        "/api/v1/tariff-assignments/bulk/",
        {**by_number, "account_numbers": [fresh.number]},
        format="json",
    )
    assert made.status_code == 201 and [row["account"] for row in made.json()] == [fresh.pk]


def test_the_bill_reads_as_a_customer_reads_it_spans_history_and_meter_serial(
    world: World,
) -> None:
    """A site reading on the 15th: period 2026-01 runs 15 December 2025 to 14 January 2026
    and splits at the year end. After 2,800 kWh billed in 2025, December's share of 600 kWh
    (17 of 31 days: 329.032) fills tier 1 to 2,880 and goes on in tier 2, then January's share
    (270.968) starts the new tier year in tier 1 again: each line says its own days."""
    from billing.bills.documents import render_bill
    from billing.tests.test_documents import pdf_text

    with world.a.active():
        site = world.a.site(reading_day=15)
    billing = Billing(world, site)
    account = billing.account("2800", "2025-12", opened_on=date(2025, 1, 1))
    meter = world.a.meter(site, account=account)
    start = {"meter": meter.pk, "taken_at": "2025-12-14T16:00:00+00:00", "total": "2800.00"}
    end = {"meter": meter.pk, "taken_at": "2026-01-14T16:00:00+00:00", "total": "3400.00"}
    billing.period(account, "600", "2026-01", opening=[start], closing=[end])
    billing.approve(billing.run("2025-12"))
    billing.approve(billing.run("2026-01"))
    bill = _bill(account.pk, "2026-01")
    lines = list(
        BillLine.dangerously_unscoped.filter(bill=bill)
        .order_by("position")
        .values_list("label", "starts_on", "ends_on")
    )
    assert lines == [
        ("第1档电量电费", date(2025, 12, 15), date(2025, 12, 31)),
        ("第2档电量电费", date(2025, 12, 15), date(2025, 12, 31)),
        ("第1档电量电费", date(2026, 1, 1), date(2026, 1, 14)),
    ]
    assert (bill.starts_on, bill.ends_on) == (date(2025, 12, 15), date(2026, 1, 14))
    with world.a.active():
        text = pdf_text(render_bill(bill, language="zh-hans")[0])  # type: ignore[arg-type]
    assert "2025-12-15 – 2025-12-31" in text and "2026-01-01 – 2026-01-14" in text
    assert "近12期用量" in text and "2025-12" in text and "2800" in text and "600" in text
    assert meter.serial_number in text


def test_billing_a_credited_earlier_period_again_reprices_the_later_bills_after_it(
    billing: Billing,
) -> None:
    """August 2,000 kWh credited (September re-priced into tier 1: 1,000 × 0.4883 = 488.30),
    then billed again by a supplementary run: September goes back to 494.30, as a credit note
    and re-bill that wait for August's bill to be issued first."""
    account = billing.account("2000", "2026-08")
    billing.period(account, "1000", "2026-09")
    billing.approve(billing.run("2026-08"))
    billing.approve(billing.run("2026-09"))
    second = billing.as_(billing.starter)
    with billing.world.a.active():
        note = credit_bill(billing.as_(billing.approver), _bill(account.pk, "2026-08"), "错")
        for bill in [note, *Bill.objects.filter(cause=note).order_by("kind")]:
            approve_bill(second, bill)
    assert _bill(account.pk, "2026-09", BillKind.REBILL).total == D("488.30")
    run = _supplementary(billing, "2026-08")
    august = Bill.dangerously_unscoped.get(run=run)
    repriced = Bill.dangerously_unscoped.filter(cause=august, kind=BillKind.REBILL).get()
    assert (august.total, repriced.total) == (D("976.60"), D("494.30"))
    with billing.world.a.active():
        with pytest.raises(ValidationError) as early:
            approve_bill(billing.as_(billing.approver), repriced)
        assert early.value.code == "cause_pending"  # August's bill is not issued yet
    billing.approve(run)
    with billing.world.a.active():
        for bill in Bill.objects.filter(cause=august).order_by("kind"):
            approve_bill(billing.as_(billing.approver), bill)
    assert balance(LedgerKind.RECEIVABLE, account) == D("976.60") + D("494.30")
    assert check_ledger(billing.world.a.tenant) == []


def test_a_class_tariff_prices_only_accounts_of_its_utility(billing: Billing) -> None:
    world = billing.world
    _class_tariff(world, "WAT", "water", "5.0000", billing.site)
    account = billing.account("100")
    billing.run()
    assert _bill(account.pk, "2026-10").total == D("48.83")  # the electricity tariff still


def test_a_csv_line_that_does_not_match_the_header_is_named(billing: Billing) -> None:
    tenant = billing.world.a.tenant
    account = billing.account("100")
    with billing.world.a.active():
        settings = BillingSettings.stored_for_tenant(tenant)
        settings.go_live_on = date(2026, 9, 1)
        settings.save()
        rows = rows_from_csv(
            f"account,arrears,tier_kwh\n{account.number},1,2,3\n{account.number}\n"
        )
        with pytest.raises(ValidationError) as refused:
            import_opening(billing.world.a.system, tenant, rows)
    assert refused.value.message_dict["rows"][0].startswith("第 2 行：有 4 个值，而表头有 3 列")
    assert not OpeningBalance.dangerously_unscoped.exists()


def test_an_api_client_never_approves_a_run(billing: Billing) -> None:
    from tenancy.principal import Principal as P

    billing.account("100")
    run = billing.run()
    client, _token = billing.world.a.api_client(("verifier", None))
    with billing.world.a.active(), pytest.raises(ValidationError) as refused:
        approve_bill_run(P.for_api_client(client), run.pk)
    assert refused.value.code == "four_eyes"
