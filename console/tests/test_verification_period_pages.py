"""Period consumption, line loss and the verification settings in the console: computing a
site's period (watched, and started again once its worker died), held-back accounts linked to
what holds them, the line-loss trend, and the settings read by many and changed by an
administrator."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Account
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent, User
from tenancy.roles import Role
from tests.world import World
from verification.computations import start_period_computation
from verification.models import (
    LineLoss,
    PeriodComputation,
    PeriodConsumption,
    VerificationItem,
    VerificationSettings,
)
from verification.tests.helpers import checks, lay

pytestmark = pytest.mark.django_db
CN = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 1, tzinfo=CN)  # period 2026-10 of a site reading on the 1st
END = datetime(2026, 10, 1, tzinfo=CN)


def _client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _held_back_account(world: World) -> Account:
    """An account whose meter read backwards mid-period: held back by that suspect reading."""
    account = world.a.account()
    meter = world.a.meter(account.site, account=account)
    with world.a.active():
        lay(
            meter,
            [
                {"taken_at": START, "total": "100.00"},
                {"taken_at": START + timedelta(days=3), "total": "90.00"},
                {"taken_at": END, "total": "200.00"},
            ],
        )
        checks(meter)
    return account


def _computed_account(world: World) -> Account:
    account = world.a.account()
    meter = world.a.meter(account.site, account=account)
    with world.a.active():
        lay(meter, [{"taken_at": START, "total": "1.00"}, {"taken_at": END, "total": "9.00"}])
        checks(meter)
    return account


def test_a_verifier_computes_a_period_and_sees_what_holds_an_account(
    world: World, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    held = _held_back_account(world)
    _computed_account(world)
    site = world.a.sites[0]
    client = _client(world.a.staff((Role.VERIFIER, None)))
    with django_capture_on_commit_callbacks(execute=True):  # the task starts on commit
        started = client.post("/console/periods/", {"site": str(site.pk), "period": "2026-10"})
    assert started.status_code == 302 and "computation=" in started["Location"]
    response = client.get(started["Location"])
    assert response.status_code == 200
    assert response.context["computation"].state == "done"
    assert "Accounts computed: 1; held back: 1;" in response.content.decode()
    assert response.context["figures"] == {
        "computed": 1,
        "held_back": 1,
        "estimated": 0,
        "billed": 0,
    }
    [(row, links)] = response.context["held"]
    assert row.account_id == held.pk
    item = VerificationItem.dangerously_unscoped.get(meter__account=held)
    assert links == [
        (
            f"/console/verification/{item.pk}/",
            f"Suspect reading of meter {item.meter.serial_number}",
        )
    ]
    with world.a.active():
        assert AuditEvent.objects.filter(action=AuditAction.PERIOD_COMPUTED).count() == 1


def test_the_list_switches_between_held_back_computed_estimated_and_all_accounts(
    world: World, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    held = _held_back_account(world)
    computed = _computed_account(world)
    site = world.a.sites[0]
    client = _client(world.a.staff((Role.VERIFIER, None)))
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/console/periods/", {"site": str(site.pk), "period": "2026-10"})
    query = {"site": str(site.pk), "period": "2026-10"}

    def accounts(show: str | None) -> list[int]:
        response = client.get("/console/periods/", query | ({"show": show} if show else {}))
        assert response.status_code == 200
        return [row.account_id for row, _links in response.context["held"]]

    assert accounts(None) == [held.pk]  # what a verifier works on comes first
    assert accounts("held_back") == [held.pk]
    assert accounts("computed") == [computed.pk]
    assert accounts("estimated") == []
    assert sorted(accounts("all")) == sorted([held.pk, computed.pk])
    assert accounts("nonsense") == [held.pk]
    page = client.get("/console/periods/", query | {"show": "computed"}).content.decode()
    assert "8.00" in page  # the computed account's consumption, 1.00 → 9.00
    export = client.get("/console/periods/", query | {"show": "all", "export": "csv"})
    assert export.status_code == 200
    exported = b"".join(export.streaming_content).decode()  # type: ignore[attr-defined]
    assert held.number in exported and computed.number in exported


def test_a_period_not_yet_ended_is_refused_on_its_field_and_nothing_is_computed(
    world: World,
) -> None:
    _computed_account(world)
    client = _client(world.alice)
    response = client.post(
        "/console/periods/", {"site": str(world.a.sites[0].pk), "period": "2099-01"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["period"]
    assert response.context["form"].value("period") == "2099-01"
    assert not PeriodConsumption.dangerously_unscoped.exists()
    # The refusal keeps the page on the site and period asked for, with their figures.
    assert response.context["figures"]["computed"] == 0
    assert response.context["period"] == "2099-01"


def test_a_period_typed_wrong_answers_400_with_the_field_error(world: World) -> None:
    response = _client(world.alice).get(
        "/console/periods/", {"site": str(world.a.sites[0].pk), "period": "2026-13"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["period"]


def test_a_site_outside_the_grant_is_refused_like_one_that_does_not_exist(world: World) -> None:
    response = _client(world.carol).post(
        "/console/periods/", {"site": str(world.a.sites[0].pk), "period": "2026-10"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["site"]
    assert not PeriodConsumption.dangerously_unscoped.exists()


def test_a_cashier_sees_periods_but_may_not_compute(world: World) -> None:
    client = _client(world.bob)
    page = client.get("/console/periods/", {"site": str(world.a.sites[0].pk), "period": "2026-10"})
    assert page.status_code == 200 and b"Compute this period" not in page.content
    response = client.post(
        "/console/periods/", {"site": str(world.a.sites[0].pk), "period": "2026-10"}
    )
    assert response.status_code == 403


def test_the_held_back_list_costs_the_same_queries_for_3_rows_as_for_30(world: World) -> None:
    site = world.a.sites[0]

    def hold(count: int) -> None:
        for _ in range(count):
            account = world.a.account(site)
            PeriodConsumption.dangerously_unscoped.create(
                tenant=world.a.tenant, account=account, site=site, period="2026-10",
                starts_at=START, ends_at=END, status="held_back", hold_reason="no meter",
            )  # fmt: skip

    client = _client(world.alice)
    query = {"site": str(site.pk), "period": "2026-10"}
    hold(3)
    client.get("/console/periods/", query)
    with CaptureQueriesContext(connection) as three:
        assert len(client.get("/console/periods/", query).context["held"]) == 3
    hold(27)
    with CaptureQueriesContext(connection) as thirty:
        assert len(client.get("/console/periods/", query).context["held"]) == 30
    assert len(thirty) == len(three)


def test_a_held_back_period_page_links_to_its_earlier_held_period(world: World) -> None:
    account = world.a.account()
    rows = [
        PeriodConsumption.dangerously_unscoped.create(
            tenant=world.a.tenant,
            account=account,
            site=account.site,
            period=period,
            starts_at=START,
            ends_at=END,
            status="held_back",
            hold_reason="the account has no meter",
        )
        for period in ("2026-09", "2026-10")
    ]
    response = _client(world.alice).get(f"/console/periods/{rows[1].pk}/")
    assert response.context["holds"] == [
        (f"/console/periods/{rows[0].pk}/", "Earlier period 2026-09, also held back")
    ]
    assert response.context["reasons"] == ["the account has no meter"]


def test_another_tenants_period_answers_404(world: World) -> None:
    period = world.b.period()
    assert _client(world.alice).get(f"/console/periods/{period.pk}/").status_code == 404


def test_a_period_of_a_site_outside_the_grant_answers_404(world: World) -> None:
    period = world.a.period(world.a.sites[0])
    assert _client(world.carol).get(f"/console/periods/{period.pk}/").status_code == 404
    assert _client(world.alice).get(f"/console/periods/{period.pk}/").status_code == 200


# --- line loss ------------------------------------------------------------------------------


def test_line_loss_by_area_with_its_trend_over_the_periods(world: World) -> None:
    loss = world.a.line_loss()
    with world.a.active():
        LineLoss.objects.create(
            tenant=world.a.tenant, transformer_area=loss.transformer_area, site=loss.site,
            period="2025-09", master_consumption=Decimal("1000"),
            customers_consumption=Decimal("950"), loss=Decimal("50"),
            loss_rate=Decimal("0.0500"), expected_rate=Decimal("0.0800"),
        )  # fmt: skip
    client = _client(world.a.staff((Role.VERIFIER, None)))
    response = client.get("/console/line-losses/", {"site": str(loss.site_id), "period": "2025-10"})
    assert response.status_code == 200
    texts = [cell.text for cell in response.context["listing"].rows[0].cells]
    assert "10.00 %" in texts and "8.00 %" in texts and "Above expected" in texts
    option = response.context["option"]
    assert option["xAxis"]["data"] == ["2025-09", "2025-10"]
    assert option["series"][0]["data"] == [5.0, 10.0]
    assert option["series"][-1]["data"] == [8.0, 8.0]  # the expected rate
    assert b'data-chart="line-loss-trend"' in response.content
    assert b'<script id="line-loss-trend" type="application/json">' in response.content


def test_a_wrong_period_in_the_line_loss_filter_answers_400(world: World) -> None:
    response = _client(world.alice).get("/console/line-losses/", {"period": "２０２６-10"})
    assert response.status_code == 400
    assert response.context["listing"].filters.errors["period"]


def test_a_cashier_may_not_see_line_loss(world: World) -> None:
    assert _client(world.bob).get("/console/line-losses/").status_code == 403


def test_line_loss_of_another_tenant_or_site_is_not_listed(world: World) -> None:
    world.b.line_loss()
    world.a.line_loss(world.a.sites[0])
    mine = world.a.line_loss(world.a.sites[1])
    response = _client(world.carol).get("/console/line-losses/")
    assert [row.id for row in response.context["listing"].rows] == [mine.pk]


def test_the_line_loss_list_costs_the_same_queries_for_3_rows_as_for_30(world: World) -> None:
    client = _client(world.alice)
    for _ in range(3):
        world.a.line_loss()
    client.get("/console/line-losses/")
    with CaptureQueriesContext(connection) as three:
        assert len(client.get("/console/line-losses/").context["listing"].rows) == 3
    for _ in range(27):
        world.a.line_loss()
    with CaptureQueriesContext(connection) as thirty:
        assert len(client.get("/console/line-losses/").context["listing"].rows) == 30
    assert len(thirty) == len(three)


# --- settings -------------------------------------------------------------------------------


def test_a_verifier_reads_the_settings_and_may_not_change_them(world: World) -> None:
    client = _client(world.a.staff((Role.VERIFIER, None)))
    page = client.get("/console/verification-settings/")
    assert page.status_code == 200 and b"<form" not in page.content.split(b"<main")[1]
    assert "Spike factor" in page.content.decode()
    response = client.post("/console/verification-settings/", {"spike_factor": "9"})
    assert response.status_code == 403


def test_an_administrator_changes_a_threshold_and_it_is_audited(world: World) -> None:
    client = _client(world.alice)
    form = client.get("/console/verification-settings/").context["form"]
    data = {bound.field.name: bound.value for bound in form.bound}
    response = client.post("/console/verification-settings/", data | {"spike_factor": "7.5"})
    assert response.status_code == 302
    with world.a.active():
        assert VerificationSettings.for_tenant(world.a.tenant).spike_factor == Decimal("7.5")
        assert AuditEvent.objects.filter(action=AuditAction.VERIFICATION_SETTINGS_UPDATED).exists()


def test_a_threshold_out_of_range_is_refused_on_its_field_and_nothing_is_stored(
    world: World,
) -> None:
    client = _client(world.alice)
    form = client.get("/console/verification-settings/").context["form"]
    data = {bound.field.name: bound.value for bound in form.bound}
    response = client.post("/console/verification-settings/", data | {"spike_factor": "1.00"})
    assert response.status_code == 400
    assert response.context["form"].errors["spike_factor"]
    assert response.context["form"].value("spike_factor") == "1.00"
    with world.a.active():
        assert not VerificationSettings.objects.exists()


def test_an_administrator_of_one_site_may_not_change_tenant_wide_settings(world: World) -> None:
    response = _client(world.carol).post("/console/verification-settings/", {"gap_hours": "5"})
    assert response.status_code == 403


def test_a_cashier_gets_403_on_the_settings(world: World) -> None:
    assert _client(world.bob).get("/console/verification-settings/").status_code == 403


def test_a_running_computation_is_polled_until_it_ends_and_not_started_twice(world: World) -> None:
    """The POST only starts the work (no task runs here: the test's transaction never
    commits); the page shows its progress, polled, and a second POST finds the same one."""
    _computed_account(world)
    site = world.a.sites[0]
    client = _client(world.alice)
    first = client.post("/console/periods/", {"site": str(site.pk), "period": "2026-10"})
    second = client.post("/console/periods/", {"site": str(site.pk), "period": "2026-10"})
    assert first["Location"] == second["Location"]
    page = client.get(first["Location"])
    computation = page.context["computation"]
    assert computation.state == "running" and computation.total == 1
    fragment = client.get(f"/console/periods/computations/{computation.pk}/")
    assert b'hx-trigger="every 2s"' in fragment.content
    with world.a.active():
        from verification.computations import run_period_computation

        run_period_computation(computation.pk)
    ended = client.get(f"/console/periods/computations/{computation.pk}/")
    assert b"hx-trigger" not in ended.content and b'data-state="done"' in ended.content
    assert (
        _client(world.mallory).get(f"/console/periods/computations/{computation.pk}/").status_code
        == 404
    )


# --- a computation whose worker died ----------------------------------------------------------


def _stalled_computation(world: World, minutes: int = 9) -> PeriodComputation:
    """A computation of two accounts whose worker died before its first chunk committed."""
    _computed_account(world)
    _held_back_account(world)
    with world.a.active():
        computation = start_period_computation(world.a.system, world.a.sites[0], "2026-10")
    PeriodComputation.dangerously_unscoped.filter(pk=computation.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=minutes)
    )
    return PeriodComputation.dangerously_unscoped.get(pk=computation.pk)


@override_settings(BARS_STALL_MINUTES=5)
def test_a_stalled_computation_says_so_polls_every_30s_and_offers_start_again(
    world: World,
) -> None:
    computation = _stalled_computation(world)
    url = f"/console/periods/computations/{computation.pk}/"
    fragment = _client(world.alice).get(url).content.decode()
    shanghai = timezone.localtime(computation.progressed_at, world.a.tenant.zone)
    assert f"Last progress at {shanghai:%H:%M}." in fragment
    assert "No progress for 9 minutes; the computation resumes where it stopped" in fragment
    assert 'hx-trigger="every 30s"' in fragment and "every 2s" not in fragment
    assert f'action="{url}resume/"' in fragment
    page = _client(world.bob).get(  # a cashier sees periods, may not compute them
        f"/console/periods/?site={computation.site_id}&period=2026-10&computation={computation.pk}"
    )
    assert "No progress for 9 minutes" in page.content.decode()
    assert "/resume/" not in page.content.decode()
    assert _client(world.bob).post(f"{url}resume/").status_code == 403


@pytest.mark.usefixtures("eager_tasks")
@override_settings(BARS_STALL_MINUTES=5)
def test_starting_a_stalled_computation_again_computes_it_and_returns_to_the_page(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    computation = _stalled_computation(world)
    client = _client(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/console/periods/computations/{computation.pk}/resume/")
    assert response.status_code == 302
    assert f"computation={computation.pk}" in response["Location"]
    done = PeriodComputation.dangerously_unscoped.get(pk=computation.pk)
    assert (done.state, done.done, done.computed, done.held_back) == ("done", 2, 1, 1)
    page = client.get(response["Location"]).content.decode()
    assert "Computation started again; it resumes where it stopped." in page
    assert 'data-state="done"' in page
    again = client.post(f"/console/periods/computations/{computation.pk}/resume/", follow=True)
    assert "Only a running computation is started again" in again.content.decode()
