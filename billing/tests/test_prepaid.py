"""Prepaid charging: validated consumption since the last charge, priced and posted against
the wallet; a reading pair is charged once, even by concurrent tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from billing.models import PrepaidCharge, Tariff, TariffVersion
from billing.prepaid import charge_account, charge_prepaid_accounts
from billing.tariffs import services as tariff_services
from billing.tests.test_tariffs import BEIJING
from customers.models import Account
from ledger.checks import check_ledger
from ledger.models import JournalEntry, LedgerAccount, LedgerKind
from metering.models import Meter
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tests.concurrency import run_together
from tests.world import World
from verification.tests.helpers import checks, lay

pytestmark = pytest.mark.usefixtures("in_tenant_a")

NOW = datetime(2026, 9, 2, tzinfo=UTC)


@pytest.fixture
def prepaid(world: World) -> tuple[Account, Meter]:
    with world.a.active():
        tariff = tariff_services.create_tariff(
            world.a.system, code="RES", name="居民阶梯", utility="electricity"
        )
        tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=date(2020, 1, 1), spec=BEIJING
        )
        tariff_services.assign_tariff(
            world.a.system, tariff, effective_from=date(2020, 1, 1), customer_class="residential"
        )
    account = world.a.account(payment_mode="prepaid", opened_on=date(2026, 1, 1))
    meter = world.a.meter(account.site, account=account)
    return account, meter


def wallet(account: Account) -> D:
    ledger = LedgerAccount.dangerously_unscoped.filter(
        kind=LedgerKind.WALLET, account=account
    ).first()
    return ledger.balance if ledger else D("0.00")


def test_validated_consumption_is_charged_to_the_wallet_once(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    account, meter = prepaid
    lay(meter, [{"total": "100.00"}, {"total": "103.00"}, {"total": "105.50"}])
    checks(meter)
    with world.a.active():
        charge = charge_account(world.a.system, account.pk, now=NOW)
        assert charge is not None
        # 08:00 → 10:00: 5.5 kWh in tier 1: 5.5 × 0.4883 = 2.68565 → 2.69.
        assert (charge.amount, charge.consumption["total"]) == (D("2.69"), "5.500")
        assert wallet(account) == D("2.69")  # the wallet's credit went down by 2.69
        # The journal says so in Chinese, from the reading's local (China) time.
        memo = JournalEntry.dangerously_unscoped.get(source_id=str(charge.pk)).memo
        local = charge.from_taken_at.astimezone(world.a.tenant.zone)
        assert local.utcoffset() == timedelta(hours=8)
        assert memo == f"预付费扣费 {account.number}，自 {local:%Y-%m-%d %H:%M} 起"
        assert charge_account(world.a.system, account.pk, now=NOW) is None
    lay(meter, [{"taken_at": datetime(2026, 9, 1, 3, tzinfo=UTC), "total": "107.00"}])
    checks(meter)
    with world.a.active():
        again = charge_account(world.a.system, account.pk, now=NOW)
        assert again is not None
    # From the last charge's closing reading: 1.5 × 0.4883 = 0.73245 → 0.73.
    assert (again.from_taken_at, again.amount) == (charge.to_taken_at, D("0.73"))
    assert wallet(account) == D("3.42")
    assert check_ledger(world.a.tenant) == []


def test_a_suspect_reading_stops_the_charge_before_it(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    account, meter = prepaid
    lay(meter, [{"total": "100.00"}, {"total": "101.00"}, {"total": "90.00"}, {"total": "91.0"}])
    assert [status for status, _rules in checks(meter)][2] == "suspect"
    with world.a.active():
        charge = charge_account(world.a.system, account.pk, now=NOW)
        assert charge is not None
    assert charge.consumption["total"] == "1.000"


def test_tiers_continue_from_the_years_earlier_charges(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    account, meter = prepaid
    lay(meter, [{"total": "0.00"}, {"total": "2870.00"}])
    checks(meter)
    with world.a.active():
        charge_account(world.a.system, account.pk, now=NOW)
    lay(meter, [{"taken_at": datetime(2026, 9, 1, 2, tzinfo=UTC), "total": "2890.00"}])
    checks(meter)
    with world.a.active():
        charge = charge_account(world.a.system, account.pk, now=NOW)
        assert charge is not None
    # 10 kWh left in tier 1 (4.88), 10 in tier 2 (5.38).
    assert [(line["label"], line["amount"]) for line in charge.lines] == [
        ("第1档电量电费", "4.88"),
        ("第2档电量电费", "5.38"),
    ]


def test_the_sweep_charges_every_prepaid_account(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    _account, meter = prepaid
    lay(meter, [{"total": "10.00"}, {"total": "20.00"}])
    checks(meter)
    world.a.account(payment_mode="postpaid")
    with world.a.active():
        summary = charge_prepaid_accounts(world.a.system, world.a.tenant)
    assert (summary.accounts, summary.charged, summary.amount) == (1, 1, D("4.88"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_charging_tasks_charge_a_reading_pair_once(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    account, meter = prepaid
    lay(meter, [{"total": "100.00"}, {"total": "150.00"}])
    checks(meter)
    results, errors = run_together(
        6, lambda _i: charge_account(world.a.system, account.pk, now=NOW), world.a.tenant
    )
    assert not errors
    assert sum(1 for result in results if result is not None) == 1
    assert PrepaidCharge.dangerously_unscoped.filter(account=account).count() == 1
    # 50 × 0.4883 = 24.415 → 24.42, once.
    assert wallet(account) == D("24.42")


# --- the tariff versions a charge was priced with ---------------------------------------------


def _charged(world: World, prepaid: tuple[Account, Meter]) -> PrepaidCharge:
    account, meter = prepaid
    lay(meter, [{"total": "100.00"}, {"total": "105.50"}])
    checks(meter)
    with world.a.active():
        charge = charge_account(world.a.system, account.pk, now=NOW)
    assert charge is not None
    return charge


def test_a_charge_keeps_the_version_that_priced_it(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    charge = _charged(world, prepaid)
    with world.a.active():
        version = TariffVersion.objects.get(tariff__code="RES")
    assert charge.tariff_versions == [version.pk]


def test_a_version_backdated_over_a_prepaid_charge_is_refused_until_confirmed(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    """The charge's readings are of 1 Sep 2026 (Beijing time): a version from 1 Sep would
    re-price them, one from 2 Sep would not."""
    charge = _charged(world, prepaid)
    day = charge.from_taken_at.astimezone(world.a.tenant.zone).date()
    with world.a.active():
        tariff = Tariff.objects.get(code="RES")
        tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=day + timedelta(days=1), spec=BEIJING
        )
        with pytest.raises(tariff_services.BackdatedVersionError) as refused:
            tariff_services.add_tariff_version(
                world.a.system, tariff, effective_from=day, spec=BEIJING
            )
        assert (refused.value.periods, refused.value.prepaid_charges) == ({}, 1)
        assert "1 笔已完成的预付费扣费" in " ".join(refused.value.messages)
        version = tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=day, spec=BEIJING, confirm_backdated=True
        )
    event = AuditEvent.dangerously_unscoped.get(
        action=AuditAction.TARIFF_VERSION_ADDED, object_id=str(version.pk)
    )
    assert (event.after or {})["backdated_over_prepaid_charges"] == 1


def test_a_version_that_priced_a_prepaid_charge_is_not_removed_and_one_that_did_not_is(
    world: World, prepaid: tuple[Account, Meter]
) -> None:
    charge = _charged(world, prepaid)
    today = world.a.tenant.local_today()
    with world.a.active():
        tariff = Tariff.objects.get(code="RES")
        priced = tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=today + timedelta(days=10), spec=BEIJING
        )
        unused = tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=today + timedelta(days=20), spec=BEIJING
        )
    # A meter clock ahead: the charge's closing reading after both versions' first days, and
    # priced (as if) by the first.
    PrepaidCharge.dangerously_unscoped.filter(pk=charge.pk).update(
        to_taken_at=timezone.now() + timedelta(days=30), tariff_versions=[priced.pk]
    )
    with world.a.active():
        assert not tariff_services.removable(priced)
        assert tariff_services.removable(unused)
