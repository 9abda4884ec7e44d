"""The bill run pages: start a run (or a supplementary run), watch it by htmx polling (slowly,
with "start again", once its worker died), review what it held back and flagged, and approve it
as a second person (the starter cannot); 404 across tenants and sites, 403 without the role."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Bill, BillRun, BillState, RunState
from billing.runs import services as run_services
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _run(world: World, run_id: int) -> BillRun:
    with world.a.active():
        return BillRun.objects.get(pk=run_id)


def _open_run(world: World, starter: Any, accounts: int = 1, held_back: int = 0) -> BillRun:
    """A run of site A1 started by ``starter``, not priced yet."""
    site = world.a.sites[0]
    period = world.a.next_period()
    for _ in range(accounts):
        world.a.billed_account(site, period)
    for _ in range(held_back):  # an account with no period consumption: held back
        world.a.tariff_assignment(site, opened_on=date(2019, 1, 1))
    with world.a.active():
        return run_services.open_bill_run(Principal.for_user(starter), site, period)


def _priced(world: World, run: BillRun) -> BillRun:
    with world.a.active():
        return run_services.price_bill_run(world.a.system, run.pk)


# --- starting a run -------------------------------------------------------------------------


@pytest.mark.usefixtures("eager_tasks")
def test_a_verifier_starts_a_run_and_is_taken_to_it(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    verifier = world.a.staff((Role.VERIFIER, None))
    site = world.a.sites[0]
    period = world.a.next_period()
    account = world.a.billed_account(site, period)
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(verifier).post(
            "/console/bill-runs/new/", {"site": str(site.pk), "period": period}
        )
    assert response.status_code == 302
    with world.a.active():
        run = BillRun.objects.get(site=site, period=period)
        # tasks run in-process without a broker, as the API's start does
        assert run.state == RunState.DRAFTED and run.started_by_id == verifier.pk
        assert Bill.objects.get(run=run).account_id == account.pk
    assert response["Location"] == f"/console/bill-runs/{run.pk}/"


@pytest.mark.parametrize(
    ("period", "says"), [("2025-13", "YYYY-MM"), ("2099-01", "billed after that")]
)
def test_a_bad_or_unfinished_period_is_shown_on_the_period_and_no_run_starts(
    world: World, period: str, says: str
) -> None:
    site = world.a.sites[0]
    response = _client(world.alice).post(
        "/console/bill-runs/new/", {"site": str(site.pk), "period": period}
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == ["period"] and says in form.errors["period"][0]
    assert form.value("period") == period
    with world.a.active():
        assert not BillRun.objects.exists()


def test_a_site_outside_the_grant_cannot_be_chosen(world: World) -> None:
    response = _client(world.carol).post(
        "/console/bill-runs/new/", {"site": str(world.a.sites[0].pk), "period": "2025-01"}
    )
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["site"]
    choices = dict(response.context["form"].fields[0].choices)
    assert list(choices) == [world.a.sites[1].pk]


def test_a_supplementary_run_needs_the_issued_run_first(world: World) -> None:
    run = _priced(world, _open_run(world, world.alice))
    response = _client(world.alice).post(
        "/console/bill-runs/new/",
        {"site": str(run.site_id), "period": run.period, "supplementary": "1"},
    )
    assert response.status_code == 400
    assert "follows the issued bill run" in " ".join(response.context["form"].non_field_errors)


def test_a_cashier_may_not_see_or_start_runs(world: World) -> None:
    assert _client(world.bob).get("/console/bill-runs/").status_code == 403
    assert _client(world.bob).get("/console/bill-runs/new/").status_code == 403
    inspector = world.a.staff((Role.INSPECTOR, None))
    assert _client(inspector).get("/console/bill-runs/").status_code == 200
    assert _client(inspector).get("/console/bill-runs/new/").status_code == 403


# --- watching it ------------------------------------------------------------------------------


def test_the_run_panel_polls_while_pricing_and_stops_once_drafted(world: World) -> None:
    run = _open_run(world, world.alice, accounts=2)
    client = _client(world.alice)
    page = client.get(f"/console/bill-runs/{run.pk}/").content.decode()
    assert f'hx-get="/console/bill-runs/{run.pk}/progress/"' in page
    assert 'hx-trigger="every 2s"' in page and "0 of 2 accounts priced" in page
    _priced(world, run)
    panel = client.get(f"/console/bill-runs/{run.pk}/progress/").content.decode()
    assert "hx-trigger" not in panel
    assert panel.lstrip().startswith('<div id="run-panel"')
    assert "Drafted" in panel


def test_held_back_accounts_are_listed_with_their_reason_and_exported(world: World) -> None:
    run = _priced(world, _open_run(world, world.alice, accounts=1, held_back=2))
    assert len(run.held_back) == 2
    client = _client(world.alice)
    response = client.get(f"/console/bill-runs/{run.pk}/")
    assert response.context["held_back_count"] == 2
    page = response.content.decode()
    for number, reason in run.held_back.items():
        assert number in page and reason in page
    export = client.get(f"/console/bill-runs/{run.pk}/held-back.csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert sorted(rows[1:]) == sorted([number, reason] for number, reason in run.held_back.items())


# --- approving it -----------------------------------------------------------------------------


def test_the_starter_sees_the_approval_disabled_with_the_reason(world: World) -> None:
    starter = world.a.staff((Role.VERIFIER, None))
    run = _priced(world, _open_run(world, starter))
    page = _client(starter).get(f"/console/bill-runs/{run.pk}/").content.decode()
    assert "You started this run: a second person approves it" in page
    assert f'href="/console/bill-runs/{run.pk}/approve/"' not in page
    confirm = _client(starter).get(f"/console/bill-runs/{run.pk}/approve/")
    text = confirm.content.decode()
    assert "You started this run" in text
    assert "you approve as the second person" not in text  # it is not them
    assert "Approve and issue" not in text
    assert not confirm.context["may_confirm"]


def test_the_starter_is_refused_by_the_service_and_the_run_stays_drafted(world: World) -> None:
    starter = world.a.staff((Role.VERIFIER, None))
    run = _priced(world, _open_run(world, starter))
    response = _client(starter).post(f"/console/bill-runs/{run.pk}/approve/")
    assert response.status_code == 400
    assert "Nobody approves a bill run they started" in response.content.decode()
    assert _run(world, run.pk).state == RunState.DRAFTED


@pytest.mark.usefixtures("eager_tasks")
def test_a_second_person_approves_after_seeing_what_happens_and_the_bills_are_issued(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    starter = world.a.staff((Role.VERIFIER, None))
    second = world.a.staff((Role.VERIFIER, None))
    run = _priced(world, _open_run(world, starter, accounts=2))
    client = _client(second)
    confirm = client.get(f"/console/bill-runs/{run.pk}/approve/")
    assert confirm.context["may_confirm"]
    text = confirm.content.decode()
    assert "Bills issued now: 2," in text and "come to 200.00 yuan" in text
    assert "you approve as the second person" in text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/console/bill-runs/{run.pk}/approve/")
    assert response.status_code == 302
    approved = _run(world, run.pk)
    assert approved.state == RunState.ISSUED and approved.approved_by_id == second.pk
    with world.a.active():
        assert set(Bill.objects.filter(run=run).values_list("state", flat=True)) == {
            BillState.ISSUED
        }


def test_an_issued_run_that_held_accounts_back_offers_a_supplementary_run(world: World) -> None:
    run = _priced(world, _open_run(world, world.alice, accounts=1, held_back=1))
    verifier = world.a.staff((Role.VERIFIER, None))
    with world.a.active():
        run_services.approve_bill_run(Principal.for_user(verifier), run.pk)
    page = _client(world.alice).get(f"/console/bill-runs/{run.pk}/").content.decode()
    assert f"?site={run.site_id}&amp;period={run.period}&amp;supplementary=1" in page


# --- scoping and lists ------------------------------------------------------------------------


def test_another_tenants_run_and_a_run_of_another_site_answer_404(world: World) -> None:
    theirs = world.b.bill_run()
    ours = world.a.bill_run(world.a.sites[0])
    assert _client(world.alice).get(f"/console/bill-runs/{theirs.pk}/").status_code == 404
    carol = _client(world.carol)  # every role, site A2 only
    for url in ("", "progress/", "approve/", "held-back.csv"):
        assert carol.get(f"/console/bill-runs/{ours.pk}/{url}").status_code == 404
    assert _client(world.alice).get(f"/console/bill-runs/{ours.pk}/").status_code == 200


def test_the_run_list_filters_by_state_and_costs_as_many_queries_for_30_as_for_3(
    world: World,
) -> None:
    def runs(count: int) -> None:
        for n in range(count):
            BillRun.dangerously_unscoped.create(
                tenant=world.a.tenant, site=world.a.sites[n % 2], period=world.a.next_period(),
                total=10, done=10, bills=10, state=RunState.DRAFTED, held_back={"1": "x"},
                started_by_kind="system", started_by_label="test",
            )  # fmt: skip

    runs(3)
    client = _client(world.alice)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/console/bill-runs/").status_code == 200
    runs(27)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/console/bill-runs/", {"state": "drafted"})
    assert len(response.context["listing"].rows) == 30
    assert len(many) == len(few)
    assert client.get("/console/bill-runs/", {"state": "issued"}).context["listing"].rows == []


# --- a run whose worker died ------------------------------------------------------------------


class WorkerDied(BaseException):
    """The worker process dying mid-chunk: nothing catches it, the chunk rolls back."""


def _stalled(world: World, run: BillRun, minutes: int = 12) -> BillRun:
    """The run last made progress ``minutes`` ago: its worker died then."""
    BillRun.dangerously_unscoped.filter(pk=run.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=minutes)
    )
    return _run(world, run.pk)


@override_settings(BARS_STALL_MINUTES=5)
def test_a_working_run_shows_its_last_progress_in_the_tenants_zone_and_polls_every_2s(
    world: World,
) -> None:
    run = _open_run(world, world.alice, accounts=2)
    panel = _client(world.alice).get(f"/console/bill-runs/{run.pk}/progress/").content.decode()
    shanghai = timezone.localtime(run.progressed_at, world.a.tenant.zone)
    assert f"Last progress at {shanghai:%H:%M}." in panel
    assert 'hx-trigger="every 2s"' in panel
    assert "No progress for" not in panel and "Start again" not in panel


@override_settings(BARS_STALL_MINUTES=5)
def test_a_stalled_run_says_so_polls_every_30s_and_offers_start_again_to_who_may_start_runs(
    world: World,
) -> None:
    run = _stalled(world, _open_run(world, world.alice, accounts=2))
    panel = _client(world.alice).get(f"/console/bill-runs/{run.pk}/progress/").content.decode()
    assert "No progress for 12 minutes; the run resumes where it stopped" in panel
    assert 'hx-trigger="every 30s"' in panel and "every 2s" not in panel
    assert "Check again" in panel
    assert f'action="/console/bill-runs/{run.pk}/resume/"' in panel
    inspector = world.a.staff((Role.INSPECTOR, None))  # sees runs, may not start them
    seen = _client(inspector).get(f"/console/bill-runs/{run.pk}/").content.decode()
    assert "No progress for 12 minutes" in seen and "/resume/" not in seen
    assert _client(inspector).post(f"/console/bill-runs/{run.pk}/resume/").status_code == 403
    listed = _client(world.alice).get("/console/bill-runs/").content.decode()
    assert "no progress (stalled)" in listed  # the list says it too, not only "running"


@pytest.mark.usefixtures("eager_tasks")
@override_settings(BARS_STALL_MINUTES=5)
def test_starting_a_stalled_run_again_prices_the_rest_and_bills_each_account_once(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    run = _open_run(world, world.alice, accounts=3)
    real = run_services.price_chunk
    chunks = iter(range(100))

    def dies_in_the_second_chunk(*args: Any) -> Any:
        if next(chunks) == 1:
            raise WorkerDied
        return real(*args)

    with (
        world.a.active(),
        mock.patch.object(run_services, "price_chunk", dies_in_the_second_chunk),
        pytest.raises(WorkerDied),
    ):
        run_services.price_bill_run(world.a.system, run.pk, chunk=1)
    assert _run(world, run.pk).done == 1
    run = _stalled(world, run)
    client = _client(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/console/bill-runs/{run.pk}/resume/")
    assert response.status_code == 302 and response["Location"] == f"/console/bill-runs/{run.pk}/"
    resumed = _run(world, run.pk)
    assert (resumed.state, resumed.done, resumed.bills) == (RunState.DRAFTED, 3, 3)
    with world.a.active():
        billed = list(Bill.objects.filter(run=run).values_list("account_id", flat=True))
    assert len(billed) == len(set(billed)) == 3
    page = client.get(response["Location"]).content.decode()
    assert "Bill run started again; it resumes where it stopped." in page


@override_settings(BARS_STALL_MINUTES=5)
def test_a_run_that_moves_again_is_not_started_again_and_the_page_says_why(world: World) -> None:
    run = _open_run(world, world.alice, accounts=1)
    response = _client(world.alice).post(f"/console/bill-runs/{run.pk}/resume/")
    assert response.status_code == 400
    assert "it is not stalled" in response.content.decode()
    with world.a.active():
        assert not AuditEvent.objects.filter(action="bill_run.resumed").exists()
    assert _client(world.alice).get(f"/console/bill-runs/{run.pk}/resume/").status_code == 302
