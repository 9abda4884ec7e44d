"""The read pages: the meters list and a meter's page, manual readings, relay commands, gateways,
reading completeness and the CSV import; each scoped to the person's tenant and sites."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.models import LedgerKind
from ledger.services import customer_ledger_accounts, post_entry, tenant_ledger_account
from metering import reports, services
from metering.models import (
    CommandState,
    Gateway,
    Meter,
    MeterCommand,
    MeterStatus,
    PollRound,
    Reading,
)
from tenancy.models import AuditEvent, User
from tenancy.roles import Role
from tests.world import World
from verification.rules import validate_readings

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _rows(response) -> list:  # type: ignore[no-untyped-def]
    return response.context["listing"].rows


def _texts(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[cell.text for cell in row.cells] for row in _rows(response)]


def _round(world: World, gateway: Gateway, slot: datetime, total: int, read: int) -> PollRound:
    with world.a.active():
        return PollRound.objects.create(
            tenant=world.a.tenant,
            gateway=gateway,
            site=gateway.site,
            slot=slot,
            started_at=slot,
            finished_at=slot + timedelta(seconds=3),
            meters_total=total,
            meters_read=read,
            requests=total,
            failed_requests=total - read,
            response_ms_total=40.0 * read,
        )


# --- the meters list -----------------------------------------------------------------------------


def test_the_meters_list_filters_by_site_status_model_and_serial(world: World) -> None:
    first = world.a.meter(serial_number="88001")
    world.a.meter(serial_number="88002", profile="DTSY1352")
    world.a.meter(world.a.sites[1], serial_number="77001")
    client = _client(world.alice)
    by_site = client.get("/console/meters/", {"site": world.a.sites[1].pk})
    assert [row[0] for row in _texts(by_site)] == ["77001"]
    by_serial = client.get("/console/meters/", {"serial": "880"})
    assert [row[0] for row in _texts(by_serial)] == ["88001", "88002"]
    by_model = client.get("/console/meters/", {"profile": "DTSY1352"})
    assert [row[0] for row in _texts(by_model)] == ["88002"]
    with world.a.active():
        services.update_meter(world.a.system, first, {"status": MeterStatus.FAULTY})
    faulty = client.get("/console/meters/", {"status": "faulty"})
    assert [row[0] for row in _texts(faulty)] == ["88001"]


def test_the_meters_list_finds_meters_not_read_for_a_day_and_never_read(world: World) -> None:
    fresh = world.a.meter(serial_number="66001")
    stale = world.a.meter(serial_number="66002")
    world.a.meter(serial_number="66003")
    world.a.reading(fresh, taken_at=timezone.now() - timedelta(hours=2))
    world.a.reading(stale, taken_at=timezone.now() - timedelta(days=3))
    client = _client(world.alice)
    not_for_a_day = client.get("/console/meters/", {"last_read": "day", "serial": "660"})
    assert [row[0] for row in _texts(not_for_a_day)] == ["66002", "66003"]
    never = client.get("/console/meters/", {"last_read": "never", "serial": "660"})
    assert [row[0] for row in _texts(never)] == ["66003"]


def test_the_meters_list_is_sorted_by_serial_and_exports_csv(world: World) -> None:
    for serial in ("30003", "30001", "30002"):
        world.a.meter(serial_number=serial)
    client = _client(world.alice)
    descending = client.get("/console/meters/", {"sort": "-serial_number"})
    assert [row[0] for row in _texts(descending)] == ["30003", "30002", "30001"]
    export = client.get("/console/meters/", {"serial": "3000", "export": "csv"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Serial number" and len(rows) == 1 + 3
    with world.a.active():
        assert AuditEvent.objects.filter(action="export.downloaded", object_type="meters").exists()


def test_the_meters_list_costs_the_same_queries_for_3_rows_as_for_30(world: World) -> None:
    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/meters/").status_code == 200
        return len(captured)

    for _ in range(3):
        world.a.meter()
    three = queries()
    for _ in range(27):
        world.a.meter()
    assert queries() == three


def test_a_site_manager_of_one_site_sees_only_its_meters(world: World) -> None:
    world.a.meter(serial_number="51001")
    world.a.meter(world.a.sites[1], serial_number="51002")
    response = _client(world.carol).get("/console/meters/")
    assert [row[0] for row in _texts(response)] == ["51002"]
    content = response.content.decode()
    assert f'<option value="{world.a.sites[1].pk}">' in content
    assert f'<option value="{world.a.sites[0].pk}">' not in content  # not even as a choice


def test_a_bad_filter_answers_400_with_its_error(world: World) -> None:
    response = _client(world.alice).get("/console/meters/", {"status": "broken"})
    assert response.status_code == 400
    assert response.context["listing"].filters.errors["status"]


# --- a meter's page ------------------------------------------------------------------------------


def test_a_meters_page_shows_its_facts_chart_and_checked_readings(world: World) -> None:
    meter = world.a.meter(serial_number="40001")
    now = timezone.now()
    for hours, total in ((30, "100"), (20, "101"), (10, "90")):
        world.a.reading(meter, taken_at=now - timedelta(hours=hours), total=Decimal(total))
    with world.a.active():
        validate_readings(world.a.tenant, [meter.pk])
    response = _client(world.alice).get(f"/console/meters/{meter.pk}/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "40001" in content and meter.site.name in content
    series = response.context["chart"]["series"]
    assert series[0]["name"] == "Total" and [point[1] for point in series[0]["data"]] == [
        100.0,
        101.0,
        90.0,
    ]
    checks = [row.check for row in response.context["readings"]]
    assert checks[0].startswith("Suspect") and "backwards" in checks[0]
    assert checks[1] == "Valid"


def test_a_chart_range_longer_than_allowed_answers_400(world: World) -> None:
    meter = world.a.meter()
    response = _client(world.alice).get(
        f"/console/meters/{meter.pk}/", {"since": "2025-01-01", "until": "2025-12-31"}
    )
    assert response.status_code == 400
    assert response.context["range_form"].errors["since"]


def test_another_tenants_meter_and_a_meter_outside_the_grant_answer_404(world: World) -> None:
    theirs = world.b.meter()
    other_site = world.a.meter(world.a.sites[0])
    assert _client(world.alice).get(f"/console/meters/{theirs.pk}/").status_code == 404
    carol = _client(world.carol)
    assert carol.get(f"/console/meters/{other_site.pk}/").status_code == 404
    assert carol.get(f"/console/meters/{other_site.pk}/readings/").status_code == 404
    assert carol.get(f"/console/meters/{other_site.pk}/readings/new/").status_code == 404
    assert carol.get(f"/console/meters/{other_site.pk}/commands/trip/").status_code == 404


def test_a_meters_readings_list_pages_and_costs_bounded_queries(world: World) -> None:
    meter = world.a.meter()
    start = datetime(2025, 3, 1, tzinfo=UTC)

    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/console/meters/{meter.pk}/readings/").status_code == 200
        return len(captured)

    for hour in range(3):
        world.a.reading(meter, taken_at=start + timedelta(hours=hour), total=Decimal(100 + hour))
    three = queries()
    for hour in range(3, 30):
        world.a.reading(meter, taken_at=start + timedelta(hours=hour), total=Decimal(100 + hour))
    assert queries() == three
    newest_first = _texts(_client(world.alice).get(f"/console/meters/{meter.pk}/readings/"))
    assert newest_first[0][3] == "129.000"


# --- manual readings -----------------------------------------------------------------------------


def _reader(world: World) -> User:
    return world.a.staff((Role.METER_READER, world.a.sites[0]))


def test_a_meter_reader_enters_a_reading_and_sees_its_check(
    world: World, django_capture_on_commit_callbacks: Any, eager_tasks: None
) -> None:
    meter = world.a.meter()
    client = _client(_reader(world))
    when = timezone.localtime(timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    with django_capture_on_commit_callbacks(execute=True):  # the checks run once it commits
        response = client.post(
            f"/console/meters/{meter.pk}/readings/new/",
            {"taken_at": when, "total": "1234.5", "relay_state": "closed"},
        )
    assert response.status_code == 302 and response["Location"] == f"/console/meters/{meter.pk}/"
    with world.a.active():
        reading = Reading.objects.get(meter=meter)
    assert reading.total == Decimal("1234.5") and reading.source == "manual"
    meter_page = client.get(response["Location"])
    assert "saved" in meter_page.content.decode()
    (row,) = meter_page.context["readings"]
    assert row.reading == reading and row.check == "Valid"


def test_a_wrong_value_is_refused_next_to_its_field_and_nothing_is_written(world: World) -> None:
    meter = world.a.meter()
    response = _client(_reader(world)).post(
        f"/console/meters/{meter.pk}/readings/new/",
        {"taken_at": "2026-01-05T08:00", "total": "-5"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["total"]
    assert 'value="-5"' in response.content.decode()
    with world.a.active():
        assert not Reading.objects.filter(meter=meter).exists()


def test_a_reading_in_the_future_is_refused_on_its_time(world: World) -> None:
    meter = world.a.meter()
    later = timezone.localtime(timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = _client(_reader(world)).post(
        f"/console/meters/{meter.pk}/readings/new/", {"taken_at": later, "total": "5"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["taken_at"]


def test_a_second_reading_for_the_same_time_with_other_values_is_refused(world: World) -> None:
    meter = world.a.meter()
    client = _client(_reader(world))
    url = f"/console/meters/{meter.pk}/readings/new/"
    client.post(url, {"taken_at": "2026-01-05T08:00", "total": "10"})
    response = client.post(url, {"taken_at": "2026-01-05T08:00", "total": "11"})
    assert response.status_code == 400
    assert response.context["form"].errors["taken_at"]
    with world.a.active():
        assert Reading.objects.get(meter=meter).total == Decimal("10")


def test_a_cashier_may_not_enter_readings(world: World) -> None:
    meter = world.a.meter()
    assert _client(world.bob).get(f"/console/meters/{meter.pk}/readings/new/").status_code == 403


# --- relay commands ------------------------------------------------------------------------------


def _manager(world: World) -> User:
    return world.a.staff((Role.SITE_MANAGER, world.a.sites[0]))


def test_the_trip_page_says_the_customer_loses_power_and_asks_a_reason(world: World) -> None:
    meter = world.a.meter(serial_number="90001")
    response = _client(_manager(world)).get(f"/console/meters/{meter.pk}/commands/trip/")
    assert response.status_code == 200
    assert any("loses power" in line for line in response.context["consequences"])
    assert [bound.field.name for bound in response.context["form"].bound] == ["reason"]


def test_the_trip_page_names_the_premise_in_full_its_account_and_what_it_owes(
    world: World,
) -> None:
    premise = world.a.premise(address="阳光花园", building="3栋", unit="2单元", room="501")
    account = world.a.account(premise=premise)
    meter = world.a.meter(serial_number="90002", account=account, premise=premise)
    with world.a.active():
        receivable = customer_ledger_accounts(world.a.tenant, LedgerKind.RECEIVABLE, [account.pk])
        revenue = tenant_ledger_account(world.a.tenant, LedgerKind.REVENUE, utility="electricity")
        post_entry(
            world.a.system,
            source_type="bill",
            source_id="B-trip",
            lines=[(receivable[account.pk], Decimal("88.00")), (revenue, Decimal("-88.00"))],
        )
    response = _client(_manager(world)).get(f"/console/meters/{meter.pk}/commands/trip/")
    lines = response.context["consequences"]
    assert (
        f"The relay of meter 90002 opens: 阳光花园 3栋 2单元 501 (account {account.number}) "
        "loses power." in lines
    )
    assert "The account owes 88.00 yuan." in lines


def test_a_collector_who_may_not_read_the_books_is_not_shown_the_balance(world: World) -> None:
    account = world.a.account()
    meter = world.a.meter(account=account, premise=account.premise)
    collector = world.a.staff((Role.COLLECTOR, world.a.sites[0]))
    response = _client(collector).get(f"/console/meters/{meter.pk}/commands/trip/")
    assert response.status_code == 200
    assert not any("owes" in line for line in response.context["consequences"])


def test_a_trip_without_a_reason_is_refused_and_sends_nothing(world: World) -> None:
    meter = world.a.meter()
    response = _client(_manager(world)).post(
        f"/console/meters/{meter.pk}/commands/trip/", {"reason": ""}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["reason"]
    with world.a.active():
        assert not MeterCommand.objects.filter(meter=meter).exists()


def test_a_trip_is_issued_and_its_page_polls_until_it_ends(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    meter = world.a.meter()
    client = _client(_manager(world))
    response = client.post(f"/console/meters/{meter.pk}/commands/trip/", {"reason": "欠费停电"})
    with world.a.active():
        command = MeterCommand.objects.get(meter=meter)
    assert (
        response.status_code == 302
        and response["Location"] == f"/console/meter-commands/{command.pk}/"
    )
    assert command.kind == "relay_trip" and command.reason == "欠费停电"
    with world.a.active():
        command = MeterCommand.objects.get(pk=command.pk)
        if command.state == CommandState.PENDING:
            fragment = client.get(f"/console/meter-commands/{command.pk}/progress/")
            assert 'hx-trigger="every 2s"' in fragment.content.decode()
            command = services.move_command(world.a.system, command, CommandState.SENT)
            services.move_command(world.a.system, command, CommandState.CONFIRMED)
    fragment = client.get(f"/console/meter-commands/{command.pk}/progress/")
    text = fragment.content.decode()
    assert "hx-trigger" not in text
    assert fragment.context["state_label"] in ("Confirmed", "Failed")


def test_a_second_command_while_one_is_open_is_refused_on_the_page(world: World) -> None:
    command = world.a.command()
    with world.a.active():
        command = MeterCommand.objects.get(pk=command.pk)
        if command.state != CommandState.PENDING:
            pytest.skip("the in-process bridge already ended the first command")
    response = _client(world.alice).post(
        f"/console/meters/{command.meter_id}/commands/close/", {"reason": "paid"}
    )
    assert response.status_code == 400
    assert "already has an open command" in " ".join(response.context["form"].non_field_errors)


def test_a_meter_reader_may_not_trip_a_relay(world: World) -> None:
    meter = world.a.meter()
    assert _client(_reader(world)).get(
        f"/console/meters/{meter.pk}/commands/trip/"
    ).status_code == (403)


def test_another_tenants_command_answers_404(world: World) -> None:
    theirs = world.b.command()
    assert _client(world.alice).get(f"/console/meter-commands/{theirs.pk}/").status_code == 404


def test_the_commands_list_costs_the_same_queries_for_3_rows_as_for_30(world: World) -> None:
    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/meter-commands/").status_code == 200
        return len(captured)

    for _ in range(3):
        world.a.command()
    three = queries()
    for _ in range(27):
        world.a.command()
    assert queries() == three


# --- gateways ------------------------------------------------------------------------------------


def test_the_gateways_list_shows_each_buss_health_over_the_last_day(world: World) -> None:
    gateway = world.a.gateway()
    now = timezone.now()
    _round(world, gateway, now - timedelta(hours=1), total=10, read=9)
    _round(world, gateway, now - timedelta(hours=2), total=10, read=10)
    _round(world, gateway, now - timedelta(days=3), total=10, read=0)  # outside the day
    response = _client(world.alice).get("/console/gateways/", {"name": gateway.name})
    (row,) = _texts(response)
    headings = [heading.label for heading in response.context["listing"].headings]
    figures = dict(zip(headings, row, strict=True))
    assert figures["Rounds"] == "2" and figures["Meters read"] == "95.0%"
    assert figures["Health (24 h)"] == "Some meters missed"


def test_the_gateways_list_costs_the_same_queries_for_3_rows_as_for_30(world: World) -> None:
    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/gateways/").status_code == 200
        return len(captured)

    for _ in range(3):
        _round(world, world.a.meter().gateway, timezone.now(), 1, 1)  # type: ignore[arg-type]
    three = queries()
    for _ in range(27):
        _round(world, world.a.meter().gateway, timezone.now(), 1, 1)  # type: ignore[arg-type]
    assert queries() == three


def test_a_gateways_page_shows_its_rounds_health_and_meters(world: World) -> None:
    meter = world.a.meter()
    gateway = meter.gateway
    assert gateway is not None
    now = timezone.now()
    for hours in range(1, 6):
        _round(world, gateway, now - timedelta(hours=hours), total=1, read=1 if hours > 1 else 0)
    client = _client(world.alice)
    response = client.get(f"/console/gateways/{gateway.pk}/")
    assert response.status_code == 200
    assert response.context["health"].rounds == 5 and response.context["success"] == "80.0%"
    assert len(response.context["listing"].rows) == 5
    assert response.context["chart"]["series"][0]["data"][-1][1] == 0.0
    missed = client.get(f"/console/gateways/{gateway.pk}/", {"missed": "true"})
    assert len(missed.context["listing"].rows) == 1
    assert f"/console/meters/?gateway={gateway.pk}" in response.content.decode()


def test_another_tenants_gateway_and_one_outside_the_grant_answer_404(world: World) -> None:
    theirs = world.b.gateway()
    mine = world.a.gateway(world.a.sites[0])
    assert _client(world.alice).get(f"/console/gateways/{theirs.pk}/").status_code == 404
    assert _client(world.carol).get(f"/console/gateways/{mine.pk}/").status_code == 404


# --- reading completeness ------------------------------------------------------------------------


def test_completeness_counts_the_meters_read_for_the_last_slot_by_site_and_gateway(
    world: World,
) -> None:
    read = world.a.meter(serial_number="70001")
    missed = world.a.meter(serial_number="70002")
    slot = reports.last_finished_slot(world.a.tenant)
    world.a.reading(read, taken_at=slot)
    client = _client(world.alice)
    response = client.get("/console/reading-completeness/")
    assert response.status_code == 200
    site_row = next(row for row in response.context["sites"] if row["name"] == read.site.name)
    assert (site_row["meters"], site_row["read"], site_row["share"]) == (2, 1, "50.0%")
    gateway_rows = {row["name"]: row for row in response.context["gateways"]}
    assert gateway_rows[missed.gateway.name]["missing"] == 1  # type: ignore[union-attr]
    assert gateway_rows[read.gateway.name]["missing"] == 0  # type: ignore[union-attr]
    unread = client.get(site_row["unread_url"])
    assert [row[0] for row in _texts(unread)] == ["70002"]


def test_a_slot_in_the_future_answers_400(world: World) -> None:
    later = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = _client(world.alice).get("/console/reading-completeness/", {"slot": later})
    assert response.status_code == 400
    assert response.context["form"].errors["slot"]


# --- the CSV import ------------------------------------------------------------------------------


def _csv_file(text: str):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("meters.csv", text.encode("utf-8"), content_type="text/csv")


def test_a_csv_file_registers_every_meter(world: World) -> None:
    site = world.a.sites[0]
    text = f"serial_number,profile,site\nC-1,DDSY1352,{site.code}\nC-2,DTSY1352,{site.code}\n"
    response = _client(world.alice).post("/console/meter-import/", {"file": _csv_file(text)})
    assert response.status_code == 302
    with world.a.active():
        assert set(Meter.objects.filter(serial_number__startswith="C-").values_list(
            "serial_number", flat=True
        )) == {"C-1", "C-2"}  # fmt: skip


def test_a_csv_file_with_bad_lines_lists_each_by_number_and_registers_none(world: World) -> None:
    site = world.a.sites[0]
    text = (
        "serial_number,profile,site\n"
        f"D-1,DDSY1352,{site.code}\n"
        f"D-2,NO-SUCH-MODEL,{site.code}\n"
        "D-3,DDSY1352,NOWHERE\n"
    )
    response = _client(world.alice).post("/console/meter-import/", {"file": _csv_file(text)})
    assert response.status_code == 400
    lines = response.context["bad_lines"]
    assert any(line.startswith("line 3: profile") for line in lines)
    assert any(line.startswith("line 4: site") for line in lines)
    with world.a.active():
        assert not Meter.objects.filter(serial_number__startswith="D-").exists()


def test_a_csv_file_may_name_only_the_sites_of_the_grant(world: World) -> None:
    manager = world.a.staff((Role.SITE_MANAGER, world.a.sites[1]))
    text = f"serial_number,profile,site\nE-1,DDSY1352,{world.a.sites[0].code}\n"
    response = _client(manager).post("/console/meter-import/", {"file": _csv_file(text)})
    assert response.status_code == 400
    with world.a.active():
        assert not Meter.objects.filter(serial_number="E-1").exists()


def test_a_meter_reader_may_not_import_meters(world: World) -> None:
    assert _client(_reader(world)).get("/console/meter-import/").status_code == 403


def test_a_setpoint_outside_its_range_is_refused_next_to_the_value(world: World) -> None:
    meter = world.a.meter()
    client = _client(_manager(world))
    url = f"/console/meters/{meter.pk}/commands/setpoint/"
    form = client.get(url).context["form"]
    assert [bound.field.name for bound in form.bound] == ["setpoint", "value", "reason"]
    response = client.post(url, {"setpoint": "code", "value": "-1", "reason": "test"})
    assert response.status_code == 400
    assert response.context["form"].errors["value"]
    with world.a.active():
        assert not MeterCommand.objects.filter(meter=meter).exists()


def test_a_gateways_rounds_cost_the_same_queries_for_3_as_for_30(world: World) -> None:
    gateway = world.a.gateway()
    start = timezone.now() - timedelta(hours=40)

    def queries() -> int:
        client = _client(world.alice)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/console/gateways/{gateway.pk}/").status_code == 200
        return len(captured)

    for number in range(3):
        _round(world, gateway, start + timedelta(minutes=15 * number), 2, 2)
    three = queries()
    for number in range(3, 30):
        _round(world, gateway, start + timedelta(minutes=15 * number), 2, 1)
    assert queries() == three
