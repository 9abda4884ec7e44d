"""Adding a tariff version (``POST /api/v1/tariffs/{id}/versions/``): every mistake of a
specification answered at once, and a version backdated over issued bills refused (409
``backdated``, with how many bills of which periods keep the old prices) until confirmed, then
recorded in the audit trail. The site's reading day is the 1st: period 2026-09 is August."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import import_module
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from billing.bills.corrections import credit_bill
from billing.bills.review import approve_bill
from billing.models import Bill, BillState, Tariff, TariffVersion
from billing.tariffs import services as tariff_services
from billing.tests.test_bill_runs import Billing
from billing.tests.test_tariffs import BEIJING
from customers.models import Account
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tests.world import World

pytestmark = pytest.mark.django_db


def _tariff(billing: Billing) -> Tariff:
    return Tariff.dangerously_unscoped.get(code=f"RES{billing.site.pk}")


def _post(world: World, tariff: Tariff, body: dict[str, Any], user: Any = None) -> Any:
    client = world.client_for(user or world.alice)
    return client.post(
        f"/api/v1/tariffs/{tariff.pk}/versions/", body, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )


def _issue(billing: Billing, accounts: list[Account], *periods: str) -> None:
    """Bill the accounts 200 kWh a period, each period's run approved by a second person."""
    for period in periods:
        for account in accounts:
            billing.period(account, "200", period)
        billing.approve(billing.run(period))


def _versions(tariff: Tariff) -> list[date]:
    return sorted(TariffVersion.dangerously_unscoped.filter(tariff=tariff).values_list(
        "effective_from", flat=True))  # fmt: skip


@pytest.fixture
def billed(billing: Billing) -> Billing:
    """Two accounts billed for 2026-09 (August) and 2026-10 (September); one of the September
    bills credited since (a second person approved the credit note)."""
    accounts = [billing.account(None, opened_on=date(2026, 1, 1)) for _ in range(2)]
    _issue(billing, accounts, "2026-09", "2026-10")
    with billing.world.a.active():
        credited = Bill.objects.get(account=accounts[0], period="2026-10")
        note = credit_bill(billing.as_(billing.starter), credited, "meter read twice")
        approve_bill(billing.as_(billing.approver), note)
    return billing


@pytest.fixture
def billing(world: World) -> Billing:
    return Billing(world)


# --- every mistake at once --------------------------------------------------------------------


def test_a_specification_with_three_mistakes_is_answered_with_all_three(world: World) -> None:
    tariff = world.a.tariff()
    spec = {
        "energy": {
            "kind": "tiered",
            "tiers": [
                {"up_to": "2880", "price": "0.4883"},
                {"up_to": "2000", "price": "0.5383"},  # the limit falls
                {"up_to": None, "price": "0.4000"},  # cheaper than the tier below
            ],
        },
        "vat_rate": "13",  # a percentage, not a fraction
    }
    response = _post(world, tariff, {"effective_from": "2026-07-01", "spec": spec})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "spec": [
            "energy.tiers[1].up_to: limits must rise",
            "energy.tiers[2].price: lower than the tier below; tier prices rise",
            'vat_rate: a fraction, e.g. "0.13"',
        ]
    }
    assert error["message"] == "spec: energy.tiers[1].up_to: limits must rise"
    assert _versions(tariff) == [date(2020, 1, 1)]


def test_a_bad_date_and_a_bad_specification_are_answered_together(world: World) -> None:
    tariff = world.a.tariff()
    response = _post(
        world, tariff, {"effective_from": "2026-02-30", "spec": {"energy": {"kind": "flat"}}}
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"effective_from", "spec"}
    assert fields["spec"] == ["energy.price: required"]


# --- backdating over issued bills -------------------------------------------------------------


def test_a_version_backdated_over_issued_bills_is_refused_until_confirmed_and_then_audited(
    billed: Billing,
) -> None:
    world, tariff = billed.world, _tariff(billed)
    with world.a.active():
        issued = {bill.pk: bill.total for bill in Bill.objects.filter(state=BillState.ISSUED)}
        events = AuditEvent.objects.filter(action=AuditAction.TARIFF_VERSION_ADDED).count()
    body = {"effective_from": "2026-08-15", "spec": BEIJING, "note": "发改委 2026 年调价"}
    refused = _post(world, tariff, body)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "backdated"
    # Two August bills and one September bill (the other was credited) keep the old prices.
    [message] = error["fields"]["effective_from"]
    assert "3 issued bills (2026-09: 2, 2026-10: 1)" in message
    assert "not re-priced automatically" in message and "re-bill" in message
    assert _versions(tariff) == [date(2020, 1, 1)]
    with world.a.active():
        assert AuditEvent.objects.filter(action=AuditAction.TARIFF_VERSION_ADDED).count() == events

    added = _post(world, tariff, {**body, "confirm_backdated": True})
    assert added.status_code == 201, added.content
    assert _versions(tariff) == [date(2020, 1, 1), date(2026, 8, 15)]
    with world.a.active():
        event = AuditEvent.objects.get(
            action=AuditAction.TARIFF_VERSION_ADDED, object_id=str(added.json()["id"])
        )
        assert event.after["backdated_over_issued_bills"] == 3
        assert event.after["backdated_periods"] == {"2026-09": 2, "2026-10": 1}
        assert event.actor_id == world.alice.pk
        # Issued bills are not re-priced: each keeps its amount.
        assert {bill.pk: bill.total for bill in Bill.objects.filter(pk__in=issued)} == issued


def test_a_version_from_the_last_billed_day_is_backdated_and_from_the_next_day_is_not(
    billed: Billing,
) -> None:
    world, tariff = billed.world, _tariff(billed)
    with world.a.active():
        last_day = max(
            Bill.objects.filter(state=BillState.ISSUED).values_list("ends_on", flat=True)
        )
    assert last_day == date(2026, 9, 30)
    on_it = _post(world, tariff, {"effective_from": str(last_day), "spec": BEIJING})
    assert on_it.status_code == 409
    assert "1 issued bill (2026-10: 1)" in on_it.json()["error"]["message"]
    after = _post(world, tariff, {"effective_from": str(last_day + timedelta(1)), "spec": BEIJING})
    assert after.status_code == 201, after.content


def test_drafts_and_void_bills_are_not_counted(billing: Billing) -> None:
    world, tariff = billing.world, _tariff(billing)
    account = billing.account(None, opened_on=date(2026, 1, 1))
    _issue(billing, [account], "2026-09")
    billing.period(account, "200", "2026-10")
    billing.run("2026-10")  # drafted, not approved
    with world.a.active():
        assert Bill.objects.get(period="2026-10").state == BillState.DRAFT
    response = _post(world, tariff, {"effective_from": "2026-09-01", "spec": BEIJING})
    assert response.status_code == 201, response.content


def test_bills_priced_by_a_later_version_are_not_counted(billed: Billing) -> None:
    """September's bills were priced with the 2020 version; a version from 1 September was
    added since (confirmed). A version from 15 August now replaces the 2020 prices only until
    1 September: of the bills, only August's keep prices it would have changed."""
    world, tariff = billed.world, _tariff(billed)
    september = {"effective_from": "2026-09-01", "spec": BEIJING, "confirm_backdated": True}
    assert _post(world, tariff, september).status_code == 201
    response = _post(world, tariff, {"effective_from": "2026-08-15", "spec": BEIJING})
    assert response.status_code == 409
    assert "2 issued bills (2026-09: 2)" in response.json()["error"]["message"]


def test_a_second_backdated_version_is_refused_over_the_bills_of_the_version_before_the_first(
    billed: Billing,
) -> None:
    """A version from 1 September was added over the issued September bills (confirmed): they
    keep the 2020 version. A second one from 15 September changes those bills' prices too,
    so it is refused as well: the live September bill (the other was credited) is counted."""
    world, tariff = billed.world, _tariff(billed)
    first = {"effective_from": "2026-09-01", "spec": BEIJING, "confirm_backdated": True}
    assert _post(world, tariff, first).status_code == 201
    response = _post(world, tariff, {"effective_from": "2026-09-15", "spec": BEIJING})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "backdated"
    assert "1 issued bill (2026-10: 1)" in response.json()["error"]["message"]
    assert _versions(tariff) == [date(2020, 1, 1), date(2026, 9, 1)]


def test_bills_priced_by_another_tariff_are_not_counted(billed: Billing) -> None:
    """The bills were priced by the class's tariff: a backdated version of another tariff
    leaves none of them at old prices."""
    world = billed.world
    other = world.a.tariff()
    response = _post(world, other, {"effective_from": "2026-08-15", "spec": BEIJING})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("day", "accepted"),
    [("1999-12-31", False), ("2000-01-01", True), ("2099-12-31", True), ("9999-12-31", False)],
)
def test_a_version_starts_between_2000_and_2099(world: World, day: str, accepted: bool) -> None:
    tariff = world.a.tariff()
    response = _post(world, tariff, {"effective_from": day, "spec": BEIJING})
    if accepted:
        assert response.status_code == 201
    else:
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {
            "effective_from": ["Give a day from 2000-01-01 to 2099-12-31."]
        }
        assert _versions(tariff) == [date(2020, 1, 1)]


def test_an_amount_with_an_exponent_is_refused(world: World) -> None:
    tariff = world.a.tariff()
    spec = {"energy": {"kind": "flat", "price": "1e3"}, "fixed_monthly_fee": "5E-1"}
    response = _post(world, tariff, {"effective_from": "2026-07-01", "spec": spec})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["spec"] == [
        "energy.price: write the amount out in full, without an exponent: 1000, not 1e3",
        "fixed_monthly_fee: write the amount out in full, without an exponent: 1000, not 1e3",
    ]
    assert _versions(tariff) == [date(2020, 1, 1)]


def test_a_bill_split_by_a_version_change_is_counted_for_its_earlier_part(billing: Billing) -> None:
    """A version from 16 September splits the September bill: its first half is the 2020
    version's, so a version from 10 September changes those days' prices."""
    world, tariff = billing.world, _tariff(billing)
    with world.a.active():
        tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=date(2026, 9, 16), spec=BEIJING
        )
    account = billing.account(None, opened_on=date(2026, 1, 1))
    _issue(billing, [account], "2026-10")
    with world.a.active():
        bill = Bill.objects.get(account=account)
        assert len(bill.tariff_versions) == 2
    response = _post(world, tariff, {"effective_from": "2026-09-10", "spec": BEIJING})
    assert response.status_code == 409
    assert "(2026-10: 1)" in response.json()["error"]["message"]


def test_another_tenants_tariff_answers_404_and_gets_no_version(
    billed: Billing, world: World
) -> None:
    tariff = _tariff(billed)
    body = {"effective_from": "2026-08-15", "spec": BEIJING, "confirm_backdated": True}
    response = _post(world, tariff, body, user=world.mallory)
    assert response.status_code == 404
    assert _versions(tariff) == [date(2020, 1, 1)]


@pytest.mark.postgres
def test_the_bills_left_at_old_prices_are_counted_from_the_site_period_index_alone(
    billed: Billing,
) -> None:
    """On a bench-sized table, reading each bill row took the count from 50 ms to 800 ms."""
    tariff = _tariff(billed)
    with billed.world.a.active():
        with CaptureQueriesContext(connection) as counted:
            left = tariff_services.bills_left_at_old_prices(tariff, date(2026, 8, 15))
        assert left == {"2026-09": 2, "2026-10": 1}
        with transaction.atomic(), connection.cursor() as cursor:
            for setting in ("enable_seqscan", "enable_indexscan", "enable_bitmapscan"):
                cursor.execute(f"SET LOCAL {setting} = off")
            cursor.execute(f"EXPLAIN {counted.captured_queries[-1]['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using bill_site_period" in plan, plan
    assert "Seq Scan" not in plan, plan


# --- bills keep the versions that priced them -------------------------------------------------


def test_filling_in_older_bills_gives_the_versions_a_run_records(billing: Billing) -> None:
    """Migration 0010 fills the versions of bills drafted before it from today's assignments
    and versions: for bills priced since, it gives what the run recorded. Here the class's
    tariff changes on 16 September, and one account has a tariff of its own from 10
    September: its September bill is priced by the class's 2020 version, then its own."""
    world, tariff = billing.world, _tariff(billing)
    own = world.a.tariff()
    accounts = [billing.account(None, opened_on=date(2026, 1, 1)) for _ in range(3)]
    with world.a.active():
        tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=date(2026, 9, 16), spec=BEIJING
        )
        tariff_services.assign_tariff(
            world.a.system, own, effective_from=date(2026, 9, 10), account=accounts[2]
        )
    _issue(billing, accounts, "2026-09", "2026-10")
    recorded = dict(Bill.dangerously_unscoped.values_list("pk", "tariff_versions"))
    with world.a.active():
        versions = {v.pk: (v.tariff_id, v.effective_from) for v in TariffVersion.objects.all()}
        september = Bill.objects.get(account=accounts[2], period="2026-10")
    assert [versions[pk] for pk in september.tariff_versions] == [
        (tariff.pk, date(2020, 1, 1)),
        (own.pk, date(2020, 1, 1)),
    ]
    assert sorted(len(versions) for versions in recorded.values()) == [1, 1, 1, 2, 2, 2]
    Bill.dangerously_unscoped.update(tariff_versions=[])
    migration = import_module("billing.migrations.0012_bill_tariff_versions")
    state = MigrationExecutor(connection).loader.project_state(
        ("billing", "0012_bill_tariff_versions")
    )
    migration.fill_tariff_versions(state.apps, None)
    assert dict(Bill.dangerously_unscoped.values_list("pk", "tariff_versions")) == recorded
