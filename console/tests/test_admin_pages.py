"""The administration pages: staff and their role grants, the dangerous actions confirmed
first, API clients whose token is shown once, the calendar, sites and transformer areas, and
the tenant's settings. Tenant-wide changes need the administrator's role for all sites."""

from __future__ import annotations

from datetime import date

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.models import ApiClient, AuditEvent, CalendarDay, RoleGrant, Site, Tenant, User
from tenancy.principal import principal_for_token
from tenancy.roles import Role
from tests.world import PASSWORD, World

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _actions(world: World, action: str) -> list[AuditEvent]:
    with world.a.active():
        return list(AuditEvent.objects.filter(action=action))


def _grants(world: World, user: User) -> set[tuple[str, int | None]]:
    with world.a.active():
        return set(RoleGrant.objects.filter(user=user).values_list("role", "site_id"))


# --- staff -----------------------------------------------------------------------------------


def test_the_staff_list_shows_each_person_with_their_roles(world: World) -> None:
    response = _client(world.alice).get("/console/admin/staff/")
    assert response.status_code == 200
    rows = {row.cells[0].text: row.cells[3].text for row in response.context["listing"].rows}
    assert set(rows) == {"alice", "bob", "carol"}
    assert "Tenant B" not in response.content.decode()


def test_the_staff_list_filters_by_role_in_the_url(world: World) -> None:
    response = _client(world.alice).get("/console/admin/staff/", {"role": Role.CASHIER})
    assert {row.cells[0].text for row in response.context["listing"].rows} == {"bob", "carol"}


def test_the_staff_list_costs_the_same_queries_for_3_or_30_people(world: World) -> None:
    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/admin/staff/").status_code == 200
        return len(captured)

    few = queries()
    for _ in range(27):
        world.a.staff((Role.CASHIER, world.a.sites[0]), (Role.COLLECTOR, None))
    assert queries() == few


def test_site_managers_and_inspectors_see_staff_but_cashiers_do_not(world: World) -> None:
    manager = world.a.staff((Role.SITE_MANAGER, world.a.sites[0]))
    inspector = world.a.staff((Role.INSPECTOR, None))
    assert _client(manager).get("/console/admin/staff/").status_code == 200
    assert _client(inspector).get(f"/console/admin/staff/{world.bob.pk}/").status_code == 200
    assert _client(world.bob).get("/console/admin/staff/").status_code == 403


def test_a_site_manager_may_look_but_not_grant(world: World) -> None:
    manager = world.a.staff((Role.SITE_MANAGER, None))
    response = _client(manager).post(
        f"/console/admin/staff/{world.bob.pk}/grants/", {"role": Role.VERIFIER}
    )
    assert response.status_code == 403
    assert _grants(world, world.bob) == {(Role.CASHIER, None)}


def test_another_tenants_staff_member_answers_404(world: World) -> None:
    client = _client(world.alice)
    assert client.get(f"/console/admin/staff/{world.mallory.pk}/").status_code == 404
    assert client.post(f"/console/admin/staff/{world.mallory.pk}/deactivate/").status_code == 404


def test_a_password_built_from_the_user_name_is_refused_on_the_password(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/staff/new/",
        {"username": "new1", "password": "new1new1new1", "role": Role.CASHIER},
    )
    assert response.status_code == 400 and response.context["form"].errors["password"]
    assert not User.objects.filter(username="new1").exists()


def test_an_administrator_creates_staff_with_a_site_limited_grant(world: World) -> None:
    site = world.a.sites[1]
    response = _client(world.alice).post(
        "/console/admin/staff/new/",
        {
            "username": "dave",
            "display_name": "Dave",
            "password": PASSWORD,
            "role": Role.CASHIER,
            "site": site.pk,
        },
    )
    dave = User.objects.get(username="dave")
    assert (
        response.status_code == 302 and response["Location"] == f"/console/admin/staff/{dave.pk}/"
    )
    assert dave.tenant_id == world.a.tenant.pk and dave.check_password(PASSWORD)
    assert _grants(world, dave) == {(Role.CASHIER, site.pk)}
    created = [
        e.actor_label for e in _actions(world, "staff.created") if e.object_id == str(dave.pk)
    ]
    assert created == ["alice"]


def test_a_weak_password_is_refused_and_not_shown_again(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/staff/new/",
        {"username": "erin", "password": "123", "role": Role.CASHIER, "site": ""},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["password"]
    page = response.content.decode()
    assert 'value="erin"' in page and 'value="123"' not in page
    assert not User.objects.filter(username="erin").exists()


def test_a_site_of_another_tenant_is_refused_on_the_site_field(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/staff/new/",
        {
            "username": "erin",
            "password": PASSWORD,
            "role": Role.CASHIER,
            "site": world.b.sites[0].pk,
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors["site"]
    assert not User.objects.filter(username="erin").exists()


def test_an_administrator_of_one_site_may_not_create_staff(world: World) -> None:
    response = _client(world.carol).post(
        "/console/admin/staff/new/", {"username": "erin", "password": PASSWORD, "role": "cashier"}
    )
    assert response.status_code == 403


def test_granting_and_taking_away_a_role(world: World) -> None:
    client = _client(world.alice)
    site = world.a.sites[0]
    response = client.post(
        f"/console/admin/staff/{world.bob.pk}/grants/", {"role": Role.COLLECTOR, "site": site.pk}
    )
    assert response.status_code == 302
    assert _grants(world, world.bob) == {(Role.CASHIER, None), (Role.COLLECTOR, site.pk)}
    with world.a.active():
        cashier = RoleGrant.objects.get(user=world.bob, role=Role.CASHIER)
    response = client.post(f"/console/admin/staff/{world.bob.pk}/grants/{cashier.pk}/remove/")
    assert response.status_code == 302
    assert _grants(world, world.bob) == {(Role.COLLECTOR, site.pk)}
    assert len(_actions(world, "staff.updated")) == 2


def test_granting_a_role_twice_is_refused_with_a_reason(world: World) -> None:
    response = _client(world.alice).post(
        f"/console/admin/staff/{world.bob.pk}/grants/", {"role": Role.CASHIER, "site": ""}
    )
    assert response.status_code == 400
    assert "twice" in response.content.decode() or response.context["grant_form"].errors
    assert _grants(world, world.bob) == {(Role.CASHIER, None)}


def test_the_last_administrator_cannot_lose_the_role(world: World) -> None:
    with world.a.active():
        grant = RoleGrant.objects.get(user=world.alice, role=Role.TENANT_ADMIN)
    response = _client(world.alice).post(
        f"/console/admin/staff/{world.alice.pk}/grants/{grant.pk}/remove/"
    )
    assert response.status_code == 400
    assert response.context["grant_errors"]
    assert (Role.TENANT_ADMIN, None) in _grants(world, world.alice)


def test_deactivating_asks_first_then_takes_the_login_away(world: World) -> None:
    client = _client(world.alice)
    confirm = client.get(f"/console/admin/staff/{world.bob.pk}/deactivate/")
    assert confirm.status_code == 200 and confirm.context["consequences"]
    world.bob.refresh_from_db()
    assert world.bob.is_active
    assert client.post(f"/console/admin/staff/{world.bob.pk}/deactivate/").status_code == 302
    world.bob.refresh_from_db()
    assert not world.bob.is_active
    assert len(_actions(world, "staff.deactivated")) == 1


def test_unlocking_clears_the_failed_sign_ins(world: World) -> None:
    AccessAttempt.objects.create(
        username="bob",
        ip_address="10.0.0.1",
        user_agent="",
        failures_since_start=5,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/login/",
    )
    client = _client(world.alice)
    confirm = client.get(f"/console/admin/staff/{world.bob.pk}/unlock/")
    assert "5" in " ".join(confirm.context["consequences"])
    assert client.post(f"/console/admin/staff/{world.bob.pk}/unlock/").status_code == 302
    assert not AccessAttempt.objects.filter(username="bob").exists()
    assert len(_actions(world, "staff.unlocked")) == 1


def test_resetting_the_second_factor_forgets_the_app(world: World) -> None:
    TOTPDevice.objects.create(user=world.bob, name="app", confirmed=True)
    client = _client(world.alice)
    assert (
        client.get(f"/console/admin/staff/{world.bob.pk}/reset-second-factor/").status_code == 200
    )
    assert TOTPDevice.objects.filter(user=world.bob).exists()
    client.post(f"/console/admin/staff/{world.bob.pk}/reset-second-factor/")
    assert not TOTPDevice.objects.filter(user=world.bob).exists()
    assert len(_actions(world, "auth.second_factor_reset")) == 1


def test_an_inspector_may_not_reset_a_second_factor(world: World) -> None:
    inspector = world.a.staff((Role.INSPECTOR, None))
    path = f"/console/admin/staff/{world.bob.pk}/reset-second-factor/"
    assert _client(inspector).post(path).status_code == 403


# --- API clients -----------------------------------------------------------------------------


def test_a_new_api_client_shows_its_token_once(world: World) -> None:
    client = _client(world.alice)
    form = client.get("/console/admin/api-clients/new/")
    once = form.context["form"].value("once")
    data = {"once": once, "name": "工商银行", "role": Role.CASHIER, "site": ""}
    response = client.post("/console/admin/api-clients/new/", data)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = response.context["token"]
    assert token in response.content.decode()
    with world.a.active():
        principal, _count = principal_for_token(token)
    assert principal is not None and principal.label == "工商银行"
    again = client.post("/console/admin/api-clients/new/", data)
    assert again.status_code == 302
    with world.a.active():
        issued = ApiClient.objects.get(name="工商银行")
        assert ApiClient.objects.count() == 1
    page = client.get(f"/console/admin/api-clients/{issued.pk}/").content.decode()
    assert token not in page and issued.key_prefix in page


def test_a_client_name_in_use_is_refused_on_the_name_field(world: World) -> None:
    existing, _token = world.a.api_client((Role.CASHIER, None))
    client = _client(world.alice)
    once = client.get("/console/admin/api-clients/new/").context["form"].value("once")
    response = client.post(
        "/console/admin/api-clients/new/", {"once": once, "name": existing.name, "role": "cashier"}
    )
    assert response.status_code == 400 and response.context["form"].errors["name"]


def test_rotating_a_token_asks_first_and_the_old_token_stops(world: World) -> None:
    api_client, old_token = world.a.api_client((Role.CASHIER, None))
    client = _client(world.alice)
    confirm = client.get(f"/console/admin/api-clients/{api_client.pk}/rotate/")
    assert confirm.status_code == 200
    once = confirm.context["form"].value("once")
    response = client.post(f"/console/admin/api-clients/{api_client.pk}/rotate/", {"once": once})
    new_token = response.context["token"]
    with world.a.active():
        assert principal_for_token(old_token)[0] is None
        assert principal_for_token(new_token)[0] is not None
    again = client.post(f"/console/admin/api-clients/{api_client.pk}/rotate/", {"once": once})
    assert again.status_code == 302
    assert len(_actions(world, "api_client.token_rotated")) == 1


def test_revoking_a_client_asks_first(world: World) -> None:
    api_client, token = world.a.api_client((Role.CASHIER, None))
    client = _client(world.alice)
    assert client.get(f"/console/admin/api-clients/{api_client.pk}/revoke/").status_code == 200
    client.post(f"/console/admin/api-clients/{api_client.pk}/revoke/")
    with world.a.active():
        assert principal_for_token(token)[0] is None


def test_api_clients_are_for_administrators_and_inspectors(world: World) -> None:
    theirs, _token = world.b.api_client((Role.CASHIER, None))
    assert _client(world.bob).get("/console/admin/api-clients/").status_code == 403
    assert _client(world.alice).get(f"/console/admin/api-clients/{theirs.pk}/").status_code == 404
    inspector = world.a.staff((Role.INSPECTOR, None))
    assert _client(inspector).get("/console/admin/api-clients/").status_code == 200
    assert _client(inspector).get("/console/admin/api-clients/new/").status_code == 403


def test_the_api_client_list_costs_the_same_queries_for_3_or_30(world: World) -> None:
    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/admin/api-clients/").status_code == 200
        return len(captured)

    for _ in range(3):
        world.a.api_client((Role.CASHIER, world.a.sites[0]))
    few = queries()
    for _ in range(27):
        world.a.api_client((Role.CASHIER, world.a.sites[0]))
    assert queries() == few


# --- calendar --------------------------------------------------------------------------------


def test_the_calendar_lists_a_years_days_and_adds_a_make_up_working_day(world: World) -> None:
    world.a.calendar_day(date(2030, 10, 1))
    world.a.calendar_day(date(2031, 1, 1))
    client = _client(world.alice)
    response = client.get("/console/admin/calendar/", {"year": 2030})
    assert [day.date for day in response.context["days"]] == [date(2030, 10, 1)]
    response = client.post(
        "/console/admin/calendar/?year=2030",
        {"date": "2030-10-12", "kind": "workday", "name": "国庆节调休"},
    )
    assert response.status_code == 302 and response["Location"].endswith("?year=2030")
    with world.a.active():
        assert CalendarDay.objects.get(date=date(2030, 10, 12)).kind == "workday"


def test_a_day_already_in_the_calendar_is_refused(world: World) -> None:
    world.a.calendar_day(date(2030, 10, 1))
    response = _client(world.alice).post(
        "/console/admin/calendar/", {"date": "2030-10-01", "kind": "holiday"}
    )
    assert response.context["form"].errors["date"] == [
        "日历中已有该日期。"
    ]  # "This day is in the calendar already."


def test_a_make_up_working_day_on_a_wednesday_is_refused_on_its_date(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/calendar/", {"date": "2026-12-02", "kind": "workday", "name": "调休"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["date"] == [
        "调休上班日必须是星期六或星期日。"  # "A make-up working day is a Saturday or a Sunday."
    ]
    with world.a.active():
        assert not CalendarDay.objects.filter(date=date(2026, 12, 2)).exists()


def test_a_year_outside_the_calendar_answers_400(world: World) -> None:
    assert _client(world.alice).get("/console/admin/calendar/", {"year": 1999}).status_code == 400


def test_deleting_a_day_asks_first(world: World) -> None:
    day = world.a.calendar_day(date(2030, 5, 1))
    client = _client(world.alice)
    assert client.get(f"/console/admin/calendar/{day.pk}/delete/").status_code == 200
    assert client.post(f"/console/admin/calendar/{day.pk}/delete/").status_code == 302
    with world.a.active():
        assert not CalendarDay.objects.filter(pk=day.pk).exists()


def test_a_cashier_sees_the_calendar_but_cannot_change_it(world: World) -> None:
    client = _client(world.bob)
    assert client.get("/console/admin/calendar/").status_code == 200
    assert (
        client.post(
            "/console/admin/calendar/", {"date": "2030-01-02", "kind": "holiday"}
        ).status_code
        == 403
    )
    theirs = world.b.calendar_day(date(2030, 5, 1))
    assert (
        _client(world.alice).get(f"/console/admin/calendar/{theirs.pk}/delete/").status_code == 404
    )


# --- sites and transformer areas -------------------------------------------------------------


def test_a_new_site_and_a_transformer_area_in_it(world: World) -> None:
    client = _client(world.alice)
    response = client.post(
        "/console/admin/sites/new/", {"code": "S-N", "name": "新城", "reading_day": "20"}
    )
    with world.a.active():
        site = Site.objects.get(code="S-N")
    assert response["Location"] == f"/console/admin/sites/{site.pk}/"
    response = client.post(f"/console/admin/sites/{site.pk}/", {"code": "T-N1", "name": "1号台区"})
    assert response.status_code == 302
    with world.a.active():
        assert site.transformer_areas.get().code == "T-N1"


def test_a_bad_reading_day_is_refused_on_its_field(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/sites/new/", {"code": "S-X", "name": "X", "reading_day": "31"}
    )
    assert response.status_code == 400 and response.context["form"].errors["reading_day"]
    assert 'value="31"' in response.content.decode()


def test_a_site_manager_adds_areas_to_their_site_only(world: World) -> None:
    manager = world.a.staff((Role.SITE_MANAGER, world.a.sites[1]))
    client = _client(manager)
    assert client.get(f"/console/admin/sites/{world.a.sites[0].pk}/").status_code == 404
    ok = client.post(f"/console/admin/sites/{world.a.sites[1].pk}/", {"code": "T-M", "name": "M"})
    assert ok.status_code == 302
    assert client.post("/console/admin/sites/new/", {"code": "S-Y", "name": "Y"}).status_code == 403


# --- settings --------------------------------------------------------------------------------


def test_the_tenant_settings_change_through_the_api_serializer(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/settings/",
        {
            "name": "Tenant A",
            "time_zone": "Asia/Urumqi",
            "language": "zh-hans",
            "payment_term_days": "20",
            "reading_interval_minutes": "15",
            "earliest_reading_on": "2020-01-01",
            "require_second_factor": "",
        },
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=world.a.tenant.pk)
    assert (tenant.time_zone, tenant.payment_term_days) == ("Asia/Urumqi", 20)
    assert tenant.earliest_reading_on == date(2020, 1, 1) and not tenant.require_second_factor
    assert len(_actions(world, "tenant.updated")) == 1


def _settings_form(**changes: str) -> dict[str, str]:
    return {
        "name": "Tenant A",
        "time_zone": "Asia/Shanghai",
        "language": "zh-hans",
        "payment_term_days": "15",
        "reading_interval_minutes": "15",
        **changes,
    }


def test_an_empty_tenant_name_is_refused_on_the_name(world: World) -> None:
    response = _client(world.alice).post("/console/admin/settings/", _settings_form(name=""))
    assert response.status_code == 400 and response.context["form"].errors["name"]
    assert Tenant.objects.get(pk=world.a.tenant.pk).name == world.a.tenant.name


def test_an_earliest_reading_day_after_today_is_refused_on_its_field(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/settings/", _settings_form(earliest_reading_on="2099-01-01")
    )
    assert response.status_code == 400
    assert response.context["form"].errors["earliest_reading_on"]
    assert Tenant.objects.get(pk=world.a.tenant.pk).earliest_reading_on is None


def test_a_payment_term_out_of_range_is_refused(world: World) -> None:
    response = _client(world.alice).post(
        "/console/admin/settings/",
        {
            "name": "Tenant A",
            "time_zone": "Asia/Shanghai",
            "language": "zh-hans",
            "payment_term_days": "365",
            "reading_interval_minutes": "15",
        },
    )
    assert response.status_code == 400 and response.context["form"].errors["payment_term_days"]
    assert Tenant.objects.get(pk=world.a.tenant.pk).payment_term_days == 15


def test_only_an_administrator_for_all_sites_changes_the_settings(world: World) -> None:
    data = {
        "name": "Renamed",
        "time_zone": "Asia/Shanghai",
        "language": "zh-hans",
        "payment_term_days": "15",
        "reading_interval_minutes": "15",
    }
    assert _client(world.carol).post("/console/admin/settings/", data).status_code == 403
    assert _client(world.bob).post("/console/admin/settings/", data).status_code == 403
    assert Tenant.objects.get(pk=world.a.tenant.pk).name == "Tenant A"


def test_the_administration_links_follow_the_roles(world: World) -> None:
    alice_home = _client(world.alice).get("/console/").content.decode()
    bob_home = _client(world.bob).get("/console/").content.decode()
    for url in ("/console/admin/staff/", "/console/admin/api-clients/"):
        assert f'href="{url}"' in alice_home and f'href="{url}"' not in bob_home
    # Every role may read the settings (read-only unless it may change them), so both see it.
    assert 'href="/console/admin/settings/"' in alice_home
    assert 'href="/console/admin/settings/"' in bob_home


def test_an_administrator_of_one_site_is_not_offered_tenant_wide_changes(world: World) -> None:
    page = _client(world.carol).get(f"/console/admin/staff/{world.bob.pk}/")
    assert page.status_code == 200
    assert not page.context["can_change"]
    assert "/grants/" not in page.content.decode()


def test_the_site_list_costs_the_same_queries_for_3_or_30_sites(world: World) -> None:
    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/admin/sites/").status_code == 200
        return len(captured)

    world.a.site()
    few = queries()
    for _ in range(27):
        world.a.site()
    assert queries() == few
