"""The tariff pages: the list, a tariff's versions read out (tiers, time of use, two-part
charges), a new version through the form of its kind with each error next to its field, and
assignments by class, site and account; 404 across tenants and sites, 403 without the role."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import Tariff, TariffAssignment, TariffVersion
from billing.tariffs import services as tariff_services
from billing.tariffs.examples import (
    BEIJING_RESIDENTIAL,
    TOU_WITH_SURCHARGES,
    two_part_industrial,
)
from billing.tests.test_bill_runs import Billing
from tenancy.roles import Role
from tests.world import World, unique

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _tariff(world: World, spec: dict[str, Any], code: str | None = None) -> Tariff:
    with world.a.active():
        tariff = tariff_services.create_tariff(
            world.a.system, code=code or unique("TAR"), name="居民阶梯电价", utility="electricity"
        )
        tariff_services.add_tariff_version(
            world.a.system, tariff, effective_from=date(2024, 1, 1), spec=spec
        )
        return tariff


def _versions(world: World, tariff: Tariff) -> list[TariffVersion]:
    with world.a.active():
        return list(TariffVersion.objects.filter(tariff=tariff).order_by("effective_from"))


# --- the list ---------------------------------------------------------------------------------


def test_the_tariff_list_finds_a_tariff_by_its_code(world: World) -> None:
    wanted = _tariff(world, BEIJING_RESIDENTIAL, code="BJ-RES")
    _tariff(world, BEIJING_RESIDENTIAL, code="OTHER")
    response = _client(world.alice).get("/console/tariffs/", {"search": "bj-res"})
    assert response.status_code == 200
    assert [row.id for row in response.context["listing"].rows] == [wanted.pk]


def test_the_tariff_list_costs_as_many_queries_for_30_tariffs_as_for_3(world: World) -> None:
    for _ in range(3):
        world.a.tariff()
    client = _client(world.alice)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/console/tariffs/").status_code == 200
    for _ in range(27):
        world.a.tariff()
    with CaptureQueriesContext(connection) as many:
        response = client.get("/console/tariffs/")
    assert len(response.context["listing"].rows) == 30
    assert len(many) == len(few)


def test_the_tariff_list_exports_csv(world: World) -> None:
    _tariff(world, BEIJING_RESIDENTIAL, code="BJ-RES")
    response = _client(world.alice).get("/console/tariffs/", {"export": "csv"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert "BJ-RES" in text


# --- a tariff's page --------------------------------------------------------------------------


def test_a_tiered_tariff_shows_each_tier_with_its_bounds_and_price(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    page = _client(world.bob).get(f"/console/tariffs/{tariff.pk}/").content.decode()
    assert "Tiered (阶梯)" in page
    # tier 1: 0 to 2,880 at 0.4883; tier 2: 2,880 to 4,800 at 0.5383; tier 3: above 4,800
    assert "2,880" in page and "4,800" in page
    assert "0.4883" in page and "0.5383" in page and "0.7883" in page
    assert "no limit" in page
    assert "Households of 5 or more people" in page
    assert "Free allowance, minimum living support" in page


def test_a_time_of_use_tariff_shows_prices_by_season_and_the_hours_of_each_period(
    world: World,
) -> None:
    tariff = _tariff(world, TOU_WITH_SURCHARGES)
    page = _client(world.bob).get(f"/console/tariffs/{tariff.pk}/").content.decode()
    assert "summer" in page and "7, 8" in page and "1.2" in page and "0.28" in page
    assert "12:00" in page and "23:00" in page and "Valley (谷)" in page
    assert "Tier surcharges on top" in page and "0.30" in page


def test_a_two_part_tariff_shows_its_capacity_charge_power_factor_and_agency_prices(
    world: World,
) -> None:
    tariff = _tariff(world, two_part_industrial(["2026-09", "2026-10"]))
    page = _client(world.bob).get(f"/console/tariffs/{tariff.pk}/").content.decode()
    assert "Capacity charge (两部制)" in page and "30 yuan per kVA a month" in page
    assert "Power factor adjustment" in page and "0.90" in page
    assert "2026-10" in page and "0.4123" in page
    assert "Government funds and surcharges" in page and "0.029" in page


def test_another_tenants_tariff_answers_404(world: World) -> None:
    with world.b.active():
        theirs = tariff_services.create_tariff(
            world.b.system, code="B1", name="B", utility="electricity"
        )
    assert _client(world.alice).get(f"/console/tariffs/{theirs.pk}/").status_code == 404
    new_version = f"/console/tariffs/{theirs.pk}/versions/new/"
    assert _client(world.alice).get(new_version).status_code == 404


# --- a new version ----------------------------------------------------------------------------


def _tiered_form(**changes: str) -> dict[str, str]:
    form = {
        "kind": "tiered",
        "effective_from": "2026-07-01",
        "note": "发改委 2026 年调价",
        "cumulation": "year",
        "tier_1_up_to": "2880",
        "tier_1_price": "0.4983",
        "tier_2_up_to": "4800",
        "tier_2_price": "0.5483",
        "tier_3_up_to": "",
        "tier_3_price": "0.7983",
    }
    form.update(changes)
    return form


def test_an_administrator_adds_a_tiered_version_through_the_form(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/?kind=tiered", _tiered_form()
    )
    assert response.status_code == 302
    added = _versions(world, tariff)[-1]
    assert added.effective_from == date(2026, 7, 1)
    assert added.note == "发改委 2026 年调价"
    assert added.spec == {
        "energy": {
            "kind": "tiered",
            "cumulation": "year",
            "tiers": [
                {"up_to": "2880", "price": "0.4983"},
                {"up_to": "4800", "price": "0.5483"},
                {"up_to": None, "price": "0.7983"},
            ],
        }
    }


def test_a_tier_limit_that_does_not_rise_is_shown_next_to_that_limit_and_nothing_is_stored(
    world: World,
) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/", _tiered_form(tier_2_up_to="2000")
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors == {"tier_2_up_to": ["limits must rise"]}
    assert form.value("tier_2_up_to") == "2000"  # what was typed is kept
    assert 'aria-describedby="id_tier_2_up_to-error"' in response.content.decode()
    assert len(_versions(world, tariff)) == 1


def test_every_figure_that_is_not_a_number_is_named_at_once(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/",
        _tiered_form(tier_1_price="0,49元", fixed_monthly_fee="abc"),
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"tier_1_price", "fixed_monthly_fee"}
    assert len(_versions(world, tariff)) == 1


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0,5", "Use a point for decimals (0.5); a comma only separates thousands (1,234.5)."),
        ("1,23", "Use a point for decimals (0.5); a comma only separates thousands (1,234.5)."),
        ("12,34.5", "Use a point for decimals (0.5); a comma only separates thousands (1,234.5)."),
        ("1e3", "Write the amount out in full, without an exponent: 1000, not 1e3."),
    ],
)
def test_a_decimal_comma_or_an_exponent_is_refused_beside_the_field(
    world: World, typed: str, message: str
) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/", _tiered_form(fixed_monthly_fee=typed)
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {"fixed_monthly_fee": [message]}
    assert len(_versions(world, tariff)) == 1


def test_thousands_separators_and_full_width_digits_are_read_as_numbers(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/",
        _tiered_form(tier_2_up_to="4,800", tier_3_price="０.７９８３", fixed_monthly_fee="1,234.5"),
    )
    assert response.status_code == 302
    spec = _versions(world, tariff)[-1].spec
    assert spec["energy"]["tiers"][1]["up_to"] == "4800"
    assert spec["energy"]["tiers"][2]["price"] == "0.7983"
    assert spec["fixed_monthly_fee"] == "1234.5"


def test_an_assignment_until_9999_is_refused_beside_the_field(world: World) -> None:
    tariff = world.a.tariff()
    response = _assign(
        world,
        tariff=str(tariff.pk),
        customer_class="commercial",
        effective_from="2026-01-01",
        effective_to="9999-12-31",
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "effective_to": ["Give a day from 2000-01-01 to 2099-12-31."]
    }
    with world.a.active():
        assert not TariffAssignment.objects.filter(tariff=tariff).exists()


def test_three_mistakes_in_one_submit_are_each_shown_next_to_their_field(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/",
        _tiered_form(tier_2_up_to="2000", tier_3_price="0.3", fixed_monthly_fee="abc"),
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "tier_2_up_to": ["limits must rise"],
        "tier_3_price": ["lower than the tier below; tier prices rise"],
        "fixed_monthly_fee": ["Enter a number, e.g. 0.4883."],
    }
    page = response.content.decode()
    for name in ("tier_2_up_to", "tier_3_price", "fixed_monthly_fee"):
        assert f'aria-describedby="id_{name}-error"' in page
    assert len(_versions(world, tariff)) == 1


def test_a_version_backdated_over_issued_bills_asks_to_confirm_and_keeps_what_was_typed(
    world: World,
) -> None:
    billing = Billing(world)
    account = billing.account(None, opened_on=date(2026, 1, 1))
    for period in ("2026-09", "2026-10"):
        billing.period(account, "200", period)
        billing.approve(billing.run(period))
    tariff = Tariff.dangerously_unscoped.get(code=f"RES{billing.site.pk}")
    url = f"/console/tariffs/{tariff.pk}/versions/new/"
    typed = _tiered_form(effective_from="2026-08-15", tier_1_price="0.5001")
    warned = _client(world.alice).post(url, typed)
    assert warned.status_code == 409
    assert warned.context["backdated"].periods == {"2026-09": 1, "2026-10": 1}
    page = warned.content.decode()
    assert "2 issued bills already cover" in page and "re-bill" in page
    assert "<td>2026-09</td>" in page and "<td>2026-10</td>" in page
    assert 'name="confirm_backdated"' in page
    assert 'value="0.5001"' in page and 'value="2026-08-15"' in page
    assert len(_versions(world, tariff)) == 1
    confirmed = _client(world.alice).post(url, {**typed, "confirm_backdated": "1"})
    assert confirmed.status_code == 302
    assert [v.effective_from for v in _versions(world, tariff)] == [
        date(2020, 1, 1),
        date(2026, 8, 15),
    ]


def test_a_version_after_the_issued_bills_needs_no_confirmation(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    page = _client(world.alice).get(f"/console/tariffs/{tariff.pk}/versions/new/")
    assert 'name="confirm_backdated"' not in page.content.decode()
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/", _tiered_form()
    )
    assert response.status_code == 302


def test_a_missing_season_price_is_shown_next_to_that_price(world: World) -> None:
    tariff = _tariff(world, TOU_WITH_SURCHARGES)
    form = {
        "kind": "tou",
        "effective_from": "2026-07-01",
        "season_1_name": "全年",
        "season_1_months": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",
        "season_1_spike": "1.1",
        "season_1_peak": "",
        "season_1_flat": "0.55",
        "season_1_valley": "0.28",
        "period_1_from": "00:00",
        "period_1_to": "24:00",
        "period_1_register": "flat",
    }
    response = _client(world.alice).post(f"/console/tariffs/{tariff.pk}/versions/new/", form)
    assert response.status_code == 400
    assert response.context["form"].errors == {"season_1_peak": ["required"]}


def test_a_two_part_version_with_capacity_and_demand_is_refused_on_the_demand_field(
    world: World,
) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    form = {
        "kind": "flat",
        "effective_from": "2026-07-01",
        "price": "0.1856",
        "capacity_charge_per_kva": "30",
        "demand_charge_per_kw": "40",
    }
    response = _client(world.alice).post(f"/console/tariffs/{tariff.pk}/versions/new/", form)
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["demand_charge_per_kw"]


def test_a_day_with_a_version_already_is_shown_on_the_date(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).post(
        f"/console/tariffs/{tariff.pk}/versions/new/", _tiered_form(effective_from="2024-01-01")
    )
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["effective_from"]


def test_a_new_version_starts_from_the_version_in_force(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    response = _client(world.alice).get(f"/console/tariffs/{tariff.pk}/versions/new/")
    form = response.context["form"]
    assert response.context["kind"] == "tiered"
    assert form.value("tier_2_up_to") == "4800" and form.value("tier_3_price") == "0.7883"
    assert form.value("large_household_extra") == "1200, 1200"


def test_staff_of_one_site_may_not_change_a_tenant_wide_tariff(world: World) -> None:
    tariff = _tariff(world, BEIJING_RESIDENTIAL)
    url = f"/console/tariffs/{tariff.pk}/versions/new/"
    assert _client(world.carol).get(url).status_code == 403  # administrator of site A2 only
    assert _client(world.carol).post(url, _tiered_form()).status_code == 403
    assert _client(world.bob).get(url).status_code == 403  # a cashier
    assert _client(world.bob).get(f"/console/tariffs/{tariff.pk}/").status_code == 200
    assert len(_versions(world, tariff)) == 1


# --- assignments ------------------------------------------------------------------------------


def _assign(world: World, **fields: str) -> Any:
    return _client(world.alice).post("/console/tariff-assignments/new/", fields)


def test_an_administrator_assigns_a_tariff_to_a_class_at_one_site(world: World) -> None:
    tariff = world.a.tariff()
    site = world.a.sites[1]
    response = _assign(
        world,
        tariff=str(tariff.pk),
        customer_class="residential",
        **{f"site_{site.pk}": "1"},
        effective_from="2026-01-01",
    )
    assert response.status_code == 302
    with world.a.active():
        made = TariffAssignment.objects.get(tariff=tariff)
        assert made.customer_class == "residential" and made.account_id is None
        assert [s.pk for s in made.sites.all()] == [site.pk]


def test_an_account_is_given_by_its_number(world: World) -> None:
    tariff = world.a.tariff()
    account = world.a.account()
    response = _assign(
        world, tariff=str(tariff.pk), account=account.number, effective_from="2026-01-01"
    )
    assert response.status_code == 302
    with world.a.active():
        assert TariffAssignment.objects.get(tariff=tariff).account_id == account.pk


def test_an_unknown_account_number_is_shown_next_to_the_field(world: World) -> None:
    tariff = world.a.tariff()
    response = _assign(world, tariff=str(tariff.pk), account="0000", effective_from="2026-01-01")
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["account"]
    assert response.context["form"].value("account") == "0000"


def test_an_unknown_account_and_a_bad_date_are_both_shown(world: World) -> None:
    tariff = world.a.tariff()
    response = _assign(world, tariff=str(tariff.pk), account="0000", effective_from="2026-13-01")
    assert response.status_code == 400
    assert sorted(response.context["form"].errors) == ["account", "effective_from"]
    with world.a.active():
        assert not TariffAssignment.objects.filter(tariff=tariff).exists()


def test_an_overlapping_assignment_is_refused_and_nothing_is_written(world: World) -> None:
    assignment = world.a.tariff_assignment()
    assert assignment.account is not None
    response = _assign(
        world,
        tariff=str(assignment.tariff_id),
        account=assignment.account.number,
        effective_from="2026-01-01",
    )
    assert response.status_code == 400
    assert "overlaps" in " ".join(response.context["form"].non_field_errors)
    with world.a.active():
        assert TariffAssignment.objects.filter(account=assignment.account).count() == 1


def test_staff_of_one_site_see_only_their_sites_account_assignments(world: World) -> None:
    theirs = world.a.tariff_assignment(world.a.sites[1])
    others = world.a.tariff_assignment(world.a.sites[0])
    response = _client(world.carol).get("/console/tariff-assignments/")
    shown = {row.id for row in response.context["listing"].rows}
    assert theirs.pk in shown and others.pk not in shown
    assert _client(world.carol).get("/console/tariff-assignments/new/").status_code == 403


def test_the_assignment_list_costs_as_many_queries_for_30_as_for_3(world: World) -> None:
    for _ in range(3):
        world.a.tariff_assignment()
    client = _client(world.alice)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/console/tariff-assignments/").status_code == 200
    for _ in range(27):
        world.a.tariff_assignment()
    with CaptureQueriesContext(connection) as many:
        response = client.get("/console/tariff-assignments/")
    assert len(response.context["listing"].rows) == 30
    assert len(many) == len(few)


def test_a_meter_reader_may_see_tariffs_but_mallory_sees_none_of_tenant_a(world: World) -> None:
    _tariff(world, BEIJING_RESIDENTIAL, code="BJ-RES")
    reader = world.a.staff((Role.METER_READER, None))
    assert _client(reader).get("/console/tariffs/").status_code == 200
    response = _client(world.mallory).get("/console/tariffs/")
    assert response.context["listing"].rows == []


def test_an_administrator_creates_a_tariff_and_a_taken_code_is_shown_on_the_code(
    world: World,
) -> None:
    client = _client(world.alice)
    made = client.post(
        "/console/tariffs/new/", {"code": "BJ-RES", "name": "北京居民", "utility": "electricity"}
    )
    assert made.status_code == 302
    with world.a.active():
        tariff = Tariff.objects.get(code="BJ-RES")
    assert made["Location"] == f"/console/tariffs/{tariff.pk}/"
    again = client.post(
        "/console/tariffs/new/", {"code": "BJ-RES", "name": "重复", "utility": "electricity"}
    )
    assert again.status_code == 400 and list(again.context["form"].errors) == ["code"]
    assert again.context["form"].value("name") == "重复"
    assert _client(world.carol).get("/console/tariffs/new/").status_code == 403
