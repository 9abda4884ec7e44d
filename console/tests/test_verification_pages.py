"""The verification queue in the console: suspect readings oldest first with the readings
around them, filters in the URL, bulk approval, and edits and estimates beside the reading as
read; scoped to the person's tenant and sites."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenancy.audit import AuditAction
from tenancy.models import AuditEvent, User
from tenancy.roles import Role
from tests.world import World
from verification.models import CheckStatus, ReadingCheck, ReadingCorrection, VerificationItem

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _verifier(world: World) -> User:
    return world.a.staff((Role.VERIFIER, None))


def _state(item: VerificationItem) -> str:
    return VerificationItem.dangerously_unscoped.get(pk=item.pk).state


def test_the_queue_shows_each_suspect_reading_oldest_first_with_its_context(world: World) -> None:
    first, second = world.a.suspect_item(), world.a.suspect_item()
    response = _client(_verifier(world)).get("/console/verification/")
    assert response.status_code == 200
    rows = response.context["listing"].rows
    assert [row.id for row in rows] == [first.pk, second.pk]
    meter, _site, _slot, value, consumption, rules, previous, following, *_ = [
        cell.text for cell in rows[0].cells
    ]
    assert meter == first.meter.serial_number
    assert value == "90.000"  # the fifth reading went back from 103 to 90
    assert rules == "Counter went backwards (not a wrap)"
    assert previous.startswith("103.000 (")
    assert following == "—"  # nothing read after it yet
    assert consumption == "—"
    assert b"data-keyboard" in response.content


def test_the_filters_stay_in_the_url_and_narrow_the_queue(world: World) -> None:
    here = world.a.suspect_item(world.a.sites[0])
    world.a.suspect_item(world.a.sites[1])
    client = _client(_verifier(world))
    response = client.get(
        "/console/verification/", {"site": str(world.a.sites[0].pk), "rule": "backwards"}
    )
    assert [row.id for row in response.context["listing"].rows] == [here.pk]
    assert f"site={world.a.sites[0].pk}" in response.context["listing"].export_url
    none_yet = client.get("/console/verification/", {"rule": "spike"})
    assert none_yet.context["listing"].rows == []
    young = client.get("/console/verification/", {"older_than_hours": "48"})
    assert young.context["listing"].rows == []  # created just now


def test_a_filter_out_of_range_answers_400_with_the_field_error(world: World) -> None:
    response = _client(_verifier(world)).get("/console/verification/", {"older_than_hours": "-1"})
    assert response.status_code == 400
    assert response.context["listing"].filters.errors["older_than_hours"]


def test_a_verifier_approves_two_readings_at_once_and_is_told_how_many(world: World) -> None:
    one, two, other = (world.a.suspect_item() for _ in range(3))
    client = _client(_verifier(world))
    response = client.post("/console/verification/", {"item": [one.pk, two.pk]}, follow=True)
    assert response.status_code == 200
    assert "Approved 2 readings as they were read." in response.content.decode()
    assert [_state(one), _state(two), _state(other)] == ["resolved", "resolved", "open"]
    with world.a.active():
        assert ReadingCheck.objects.get(reading_id=one.reading_id).status == CheckStatus.APPROVED
        event = AuditEvent.objects.get(action=AuditAction.READINGS_APPROVED)
    assert sorted(event.object_ids) == sorted([one.reading_id, two.reading_id])
    assert [row.id for row in response.context["listing"].rows] == [other.pk]


def test_approving_nothing_selected_answers_400_and_says_so(world: World) -> None:
    world.a.suspect_item()
    response = _client(_verifier(world)).post("/console/verification/", {})
    assert response.status_code == 400
    assert "Choose the readings to approve." in response.content.decode()


def test_a_batch_with_an_item_outside_the_grant_approves_nothing(world: World) -> None:
    theirs = world.a.suspect_item(world.a.sites[0])
    mine = world.a.suspect_item(world.a.sites[1])
    response = _client(world.carol).post("/console/verification/", {"item": [mine.pk, theirs.pk]})
    assert response.status_code == 400
    assert f"Unknown items: {theirs.pk}" in response.content.decode()
    assert _state(mine) == _state(theirs) == "open"


def test_a_batch_with_an_item_already_resolved_approves_nothing(world: World) -> None:
    done, waiting = world.a.suspect_item(), world.a.suspect_item()
    client = _client(_verifier(world))
    client.post("/console/verification/", {"item": [done.pk]})
    response = client.post("/console/verification/", {"item": [done.pk, waiting.pk]})
    assert response.status_code == 400
    assert f"not open: {done.pk}" in response.content.decode()
    assert _state(waiting) == "open"


def test_an_inspector_reads_the_queue_but_may_not_approve(world: World) -> None:
    item = world.a.suspect_item()
    inspector = _client(world.a.staff((Role.INSPECTOR, None)))
    page = inspector.get("/console/verification/")
    assert page.status_code == 200 and b"approve-form" not in page.content
    assert inspector.post("/console/verification/", {"item": [item.pk]}).status_code == 403
    assert _state(item) == "open"


def test_a_cashier_gets_403_and_no_link_to_the_queue(world: World) -> None:
    client = _client(world.bob)
    assert client.get("/console/verification/").status_code == 403
    assert b'href="/console/verification/"' not in client.get("/console/").content


def test_another_tenants_item_answers_404(world: World) -> None:
    item = world.b.suspect_item()
    client = _client(world.alice)
    for suffix in ("", "edit/", "estimate/"):
        assert client.get(f"/console/verification/{item.pk}/{suffix}").status_code == 404


def test_an_item_of_a_site_outside_the_grant_answers_404(world: World) -> None:
    item = world.a.suspect_item(world.a.sites[0])
    carol = _client(world.carol)  # every role, site A2 only
    assert carol.get(f"/console/verification/{item.pk}/").status_code == 404
    assert carol.post(f"/console/verification/{item.pk}/edit/", {}).status_code == 404
    assert _client(world.alice).get(f"/console/verification/{item.pk}/").status_code == 200


def test_the_queue_costs_the_same_queries_for_3_rows_as_for_30(world: World) -> None:
    for _ in range(3):
        world.a.suspect_item()
    client = _client(_verifier(world))
    client.get("/console/verification/")  # sessions, permissions and caches warmed
    with CaptureQueriesContext(connection) as three:
        assert len(client.get("/console/verification/").context["listing"].rows) == 3
    for _ in range(27):
        world.a.suspect_item()
    with CaptureQueriesContext(connection) as thirty:
        assert len(client.get("/console/verification/").context["listing"].rows) == 30
    assert len(thirty) == len(three)


def test_the_csv_export_lists_the_queue_and_is_audited(world: World) -> None:
    item = world.a.suspect_item()
    response = _client(_verifier(world)).get("/console/verification/", {"export": "csv"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 2 and rows[1][0] == item.meter.serial_number
    with world.a.active():
        assert AuditEvent.objects.filter(action="export.downloaded").count() == 1


def test_the_item_page_shows_the_readings_around_the_suspect_one(world: World) -> None:
    item = world.a.suspect_item()
    response = _client(_verifier(world)).get(f"/console/verification/{item.pk}/")
    around = response.context["around"]
    assert [row["reading"].total for row in around] == [
        Decimal(v) for v in ("101", "102", "103", "90")
    ]
    assert [row["this"] for row in around] == [False, False, False, True]
    assert "(this reading)" in response.content.decode()


def test_an_edit_with_a_reason_is_proposed_beside_the_reading_as_read(world: World) -> None:
    item = world.a.suspect_item()
    client = _client(_verifier(world))
    form = client.get(f"/console/verification/{item.pk}/edit/")
    assert form.context["form"].value("total") == Decimal("90.000")  # the reading as read
    response = client.post(
        f"/console/verification/{item.pk}/edit/", {"total": "104", "reason": "digit misread"}
    )
    with world.a.active():
        correction = ReadingCorrection.objects.get(meter=item.meter)
    assert (
        response.status_code == 302
        and response["Location"] == f"/console/corrections/{correction.pk}/"
    )
    assert correction.total == Decimal("104") and correction.state == "proposed"
    assert correction.reason == "digit misread"
    assert _state(item) == "awaiting_approval"


def test_an_edit_without_a_reason_or_with_a_negative_total_writes_nothing(world: World) -> None:
    item = world.a.suspect_item()
    response = _client(_verifier(world)).post(
        f"/console/verification/{item.pk}/edit/", {"total": "-5", "reason": ""}
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors["total"] and form.errors["reason"]
    assert form.value("total") == "-5"  # what was typed is kept
    with world.a.active():
        assert not ReadingCorrection.objects.exists()
    assert _state(item) == "open"


def test_an_estimate_is_shown_beside_the_reading_then_proposed(world: World) -> None:
    item = world.a.suspect_item()  # hourly 100, 101, 102, 103, then 90
    client = _client(_verifier(world))
    preview = client.get(f"/console/verification/{item.pk}/estimate/", {"method": "daily_average"})
    assert preview.status_code == 200
    assert preview.context["registers"] == [("Total (kWh)", "90.000")]
    assert preview.context["preview"] == [("Total (kWh)", "104.000")]
    response = client.post(
        f"/console/verification/{item.pk}/estimate/",
        {"method": "daily_average", "reason": "meter display broken"},
    )
    assert response.status_code == 302
    with world.a.active():
        correction = ReadingCorrection.objects.get(meter=item.meter)
    assert (correction.kind, correction.method, correction.total) == (
        "estimate",
        "daily_average",
        Decimal("104"),
    )


def test_an_estimate_without_a_reason_answers_400_and_keeps_the_method(world: World) -> None:
    item = world.a.suspect_item()
    response = _client(_verifier(world)).post(
        f"/console/verification/{item.pk}/estimate/", {"method": "daily_average", "reason": ""}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["reason"]
    assert response.context["preview"]  # the estimate is still shown beside the reading
    with world.a.active():
        assert not ReadingCorrection.objects.exists()


def test_an_estimate_the_history_cannot_give_says_why(world: World) -> None:
    item = world.a.suspect_item()
    response = _client(_verifier(world)).get(
        f"/console/verification/{item.pk}/estimate/", {"method": "last_year"}
    )
    assert "There are no readings of this span last year." in response.content.decode()


def test_a_reader_may_not_edit_a_suspect_reading(world: World) -> None:
    item = world.a.suspect_item()
    manager = _client(world.a.staff((Role.SITE_MANAGER, None)))
    assert manager.get(f"/console/verification/{item.pk}/").status_code == 200
    assert manager.get(f"/console/verification/{item.pk}/edit/").status_code == 403
    response = manager.post(
        f"/console/verification/{item.pk}/estimate/", {"method": "daily_average", "reason": "x"}
    )
    assert response.status_code == 403
