"""The inspection pages: drawing a sample (errors by field, nothing written), re-checking an
item and recording a finding, the findings lists (the inspector's and the responsible person's),
acknowledging, the KPI page with its CSV; 404 across tenants and sites, 403 for roles without
the permission, and queries that do not grow with the rows."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inspection.models import Finding, FindingState, InspectionSample, SampleItem
from inspection.services import draw_sample, record_finding
from inspection.tests.scene import PERIOD, Scene, build_scene
from tenancy.models import AuditEvent, User
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _sample(scene: Scene, readings: int = 3) -> tuple[InspectionSample, list[SampleItem]]:
    scene.enter_readings(readings)
    sample = scene.draw(readings=readings, staff_id=scene.reader.pk)
    with scene.a.active():
        return sample, list(SampleItem.objects.filter(sample=sample).order_by("position"))


def _finding(scene: Scene, item: SampleItem, severity: str = "major") -> Finding:
    with scene.a.active():
        return record_finding(
            scene.as_(scene.inspector), item, outcome="finding", category="misread",
            severity=severity, note="Typed 13 for 31.",
        )  # fmt: skip


# --- drawing ----------------------------------------------------------------------------------


def test_an_inspector_draws_a_sample_and_lands_on_its_page(world: World) -> None:
    scene = build_scene(world)
    scene.enter_readings(4)
    client = _client(scene.inspector)
    form = client.get("/console/inspection/samples/draw/")
    assert form.status_code == 200
    response = client.post(
        "/console/inspection/samples/draw/",
        {"site": scene.site.pk, "period": PERIOD, "staff": "", "readings": "3", "bills": "0"},
    )
    with world.a.active():
        sample = InspectionSample.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/inspection/samples/{sample.pk}/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert len(page.context["listing"].rows) == 3
    assert "0 of 3 items checked" in page.content.decode()


def test_a_sample_smaller_than_asked_for_says_how_many_were_available(world: World) -> None:
    scene = build_scene(world)
    scene.enter_readings(2)
    readings = scene.draw(readings=5, bills=0)
    text = _client(scene.inspector).get(f"/console/inspection/samples/{readings.pk}/")
    assert "Only 2 readings were available (5 asked for)." in text.content.decode()
    bill = scene.issued_bill()
    with world.a.active():
        bills = draw_sample(
            scene.as_(scene.inspector), scene.site, bill.period, readings=4, bills=3
        )
    text = _client(scene.inspector).get(f"/console/inspection/samples/{bills.pk}/")
    assert "Only 1 bill was available (3 asked for)." in text.content.decode()
    assert "No reading was available (4 asked for)." in text.content.decode()
    full = scene.draw(readings=2, bills=0)
    text = _client(scene.inspector).get(f"/console/inspection/samples/{full.pk}/")
    assert "available" not in text.content.decode()  # it holds all it asked for


def test_a_draw_with_bad_input_shows_each_fields_error_keeps_what_was_typed_and_writes_nothing(
    world: World,
) -> None:
    scene = build_scene(world)
    client = _client(scene.inspector)
    response = client.post(
        "/console/inspection/samples/draw/",
        {"site": scene.site.pk, "period": "2025-13", "readings": "abc", "bills": "0"},
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"readings"}
    response = client.post(
        "/console/inspection/samples/draw/",
        {"site": scene.site.pk, "period": "2025-13", "readings": "500", "bills": "0"},
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"readings"}
    response = client.post(
        "/console/inspection/samples/draw/",
        {"site": scene.site.pk, "period": "2025-13", "readings": "5", "bills": "0"},
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"period"}
    assert 'value="2025-13"' in response.content.decode()
    with world.a.active():
        assert not InspectionSample.objects.exists()


def test_a_site_outside_the_inspectors_grant_is_refused_on_the_site_field(world: World) -> None:
    scene = build_scene(world)
    scene.enter_readings(2)
    response = _client(world.carol).post(  # every role, site A2 only
        "/console/inspection/samples/draw/",
        {"site": scene.site.pk, "period": PERIOD, "readings": "2", "bills": "0"},
    )
    assert response.status_code == 400
    assert "site" in response.context["form"].errors


def test_a_site_manager_sees_samples_but_cannot_draw_one(world: World) -> None:
    manager = world.a.staff((Role.SITE_MANAGER, None))
    client = _client(manager)
    assert client.get("/console/inspection/samples/").status_code == 200
    assert (
        b"/console/inspection/samples/draw/"
        not in client.get("/console/inspection/samples/").content
    )
    assert client.get("/console/inspection/samples/draw/").status_code == 403


# --- re-checking ------------------------------------------------------------------------------


def test_the_item_page_shows_the_reading_among_its_neighbours_and_records_a_finding(
    world: World,
) -> None:
    scene = build_scene(world)
    sample, items = _sample(scene, 3)
    client = _client(scene.inspector)
    page = client.get(f"/console/inspection/items/{items[1].pk}/")
    assert page.status_code == 200
    neighbours = page.context["neighbours"]
    assert len(neighbours) == 3 and [row["current"] for row in neighbours].count(True) == 1
    assert page.context["can_record"]
    response = client.post(
        f"/console/inspection/items/{items[1].pk}/",
        {"outcome": "finding", "category": "misread", "severity": "minor", "note": "13 for 31"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/console/inspection/items/{items[2].pk}/"  # the next one
    with world.a.active():
        finding = Finding.objects.get()
        sample.refresh_from_db()
    assert (finding.responsible_id, finding.severity) == (scene.reader.pk, "minor")
    assert sample.checked == 1


def test_a_finding_without_its_category_severity_and_note_is_refused_by_field(
    world: World,
) -> None:
    scene = build_scene(world)
    _, items = _sample(scene, 1)
    response = _client(scene.inspector).post(
        f"/console/inspection/items/{items[0].pk}/", {"outcome": "finding", "note": ""}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"category", "severity", "note"}
    with world.a.active():
        assert not Finding.objects.exists()


def test_a_site_manager_sees_an_item_but_may_not_record_a_finding(world: World) -> None:
    scene = build_scene(world)
    _, items = _sample(scene, 1)
    client = _client(world.a.staff((Role.SITE_MANAGER, None)))
    page = client.get(f"/console/inspection/items/{items[0].pk}/")
    assert page.status_code == 200 and not page.context["can_record"]
    assert (
        client.post(f"/console/inspection/items/{items[0].pk}/", {"outcome": "ok"}).status_code
        == 403
    )


def test_the_bill_item_page_shows_the_bill_and_its_lines(world: World) -> None:
    scene = build_scene(world)
    bill = scene.issued_bill()
    with world.a.active():
        from inspection.services import draw_sample

        sample = draw_sample(scene.as_(scene.inspector), scene.site, bill.period, readings=0,
                             bills=1)  # fmt: skip
        item = SampleItem.objects.get(sample=sample)
    page = _client(scene.inspector).get(f"/console/inspection/items/{item.pk}/")
    assert page.status_code == 200
    assert page.context["bill"].pk == bill.pk and len(page.context["lines"]) >= 1
    assert bill.number in page.content.decode()


# --- scoping ----------------------------------------------------------------------------------


def test_another_tenants_sample_item_and_finding_answer_404(world: World) -> None:
    scene = build_scene(world)
    sample, items = _sample(scene, 1)
    finding = _finding(scene, items[0])
    mallory = _client(world.mallory)
    for url in (
        f"/console/inspection/samples/{sample.pk}/",
        f"/console/inspection/items/{items[0].pk}/",
        f"/console/inspection/my-findings/{finding.pk}/",
    ):
        assert mallory.get(url).status_code == 404, url


def test_a_sample_of_a_site_outside_the_grant_answers_404(world: World) -> None:
    scene = build_scene(world)
    sample, items = _sample(scene, 1)
    carol = _client(world.carol)  # every role, site A2 only
    assert carol.get(f"/console/inspection/samples/{sample.pk}/").status_code == 404
    assert carol.get(f"/console/inspection/items/{items[0].pk}/").status_code == 404
    assert (
        carol.post(f"/console/inspection/items/{items[0].pk}/", {"outcome": "ok"}).status_code
        == 404
    )
    with world.a.active():
        assert not Finding.objects.exists()


def test_roles_without_inspection_get_403_and_no_links(world: World) -> None:
    client = _client(world.bob)  # cashier
    for url in (
        "/console/inspection/samples/",
        "/console/inspection/findings/",
        "/console/inspection/kpis/",
    ):
        assert client.get(url).status_code == 403, url
    home = client.get("/console/").content
    assert b"/console/inspection/samples/" not in home
    assert b"/console/inspection/my-findings/" in home  # everyone may have findings


# --- findings ---------------------------------------------------------------------------------


def test_the_findings_list_filters_by_responsible_person_and_state_and_exports_csv(
    world: World,
) -> None:
    scene = build_scene(world)
    _, items = _sample(scene, 2)
    _finding(scene, items[0])
    with world.a.active():
        record_finding(scene.as_(scene.inspector), items[1], outcome="ok")
    client = _client(scene.inspector)
    mine = client.get(
        "/console/inspection/findings/", {"responsible_id": str(scene.reader.pk), "state": "open"}
    )
    assert mine.status_code == 200
    assert len(mine.context["listing"].rows) == 1
    other = client.get("/console/inspection/findings/", {"responsible_id": scene.verifier.pk})
    assert other.context["listing"].rows == []
    export = client.get("/console/inspection/findings/", {"export": "csv"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert len(list(csv.reader(io.StringIO(text)))) == 1 + 2
    assert client.get("/console/inspection/findings/", {"since": "1899-01-01"}).status_code == 400


def test_the_responsible_person_sees_and_acknowledges_their_findings_only(world: World) -> None:
    scene = build_scene(world)
    _, items = _sample(scene, 1)
    finding = _finding(scene, items[0])
    reader = _client(scene.reader)
    listing = reader.get("/console/inspection/my-findings/").context["listing"]
    assert [row.id for row in listing.rows] == [finding.pk]
    assert (
        _client(scene.verifier).get("/console/inspection/my-findings/").context["listing"].rows
        == []
    )
    assert (
        _client(scene.verifier).get(f"/console/inspection/my-findings/{finding.pk}/").status_code
        == 404
    )
    page = reader.get(f"/console/inspection/my-findings/{finding.pk}/")
    assert page.status_code == 200 and "Typed 13 for 31." in page.content.decode()
    response = reader.post(
        f"/console/inspection/my-findings/{finding.pk}/", {"response": "Re-read the meter."}
    )
    assert response.status_code == 302
    with world.a.active():
        finding.refresh_from_db()
        event = AuditEvent.objects.get(action="inspection.finding_acknowledged")
    assert (finding.state, finding.response) == (FindingState.ACKNOWLEDGED, "Re-read the meter.")
    assert event.actor_id == scene.reader.pk


# --- KPIs -------------------------------------------------------------------------------------


def test_the_kpi_page_shows_people_and_sites_and_exports_each_table(world: World) -> None:
    scene = build_scene(world)
    _, items = _sample(scene, 1)
    _finding(scene, items[0], severity="critical")
    client = _client(scene.inspector)
    page = client.get("/console/inspection/kpis/")
    assert page.status_code == 200
    people = {row[0]: row for row in page.context["people_rows"]}
    assert people["reader"][2] == 1  # readings entered
    assert people["reader"][9] == 1  # critical findings
    export = client.get(
        "/console/inspection/kpis/", {"site": str(scene.site.pk), "export": "people"}
    )
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert len(rows[0]) == 11  # the headings
    assert any(row[0] == "reader" for row in rows[1:])
    with world.a.active():
        audited = AuditEvent.objects.get(action="export.downloaded")
    assert audited.object_type == "staff-kpis-people"


def test_the_kpi_page_refuses_a_bad_month_and_a_site_outside_the_grant(world: World) -> None:
    client = _client(world.carol)
    bad = client.get("/console/inspection/kpis/", {"month": "2025-13"})
    assert bad.status_code == 400 and "month" in bad.context["form"].errors
    outside = client.get("/console/inspection/kpis/", {"site": world.a.sites[0].pk})
    assert outside.status_code == 400 and "site" in outside.context["form"].errors
    mine = client.get("/console/inspection/kpis/", {"site": world.a.sites[1].pk})
    assert mine.status_code == 200
    assert [row[0] for row in mine.context["site_rows"]] == [str(world.a.sites[1])]


# --- queries per page -------------------------------------------------------------------------


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_list_pages_cost_the_same_queries_with_3_rows_as_with_30(world: World) -> None:
    scene = build_scene(world)
    inspector = _client(scene.inspector)
    reader = _client(scene.reader)

    def grow(count: int) -> InspectionSample:
        scene.enter_readings(count)
        sample = scene.draw(readings=count, staff_id=scene.reader.pk)
        with world.a.active():
            items = list(SampleItem.objects.filter(sample=sample))
        assert len(items) == count
        for item in items:
            _finding(scene, item)
        return sample

    small = grow(3)
    urls = lambda sample: [  # noqa: E731
        "/console/inspection/samples/",
        f"/console/inspection/samples/{sample.pk}/",
        "/console/inspection/findings/",
        "/console/inspection/my-findings/",
        "/console/inspection/kpis/",
    ]
    few = [_queries(reader if "my-" in url else inspector, url) for url in urls(small)]
    for _more in range(9):
        grow(3)
    large = grow(30)
    many = [_queries(reader if "my-" in url else inspector, url) for url in urls(large)]
    assert many == few


def test_recording_on_an_item_already_checked_says_so_and_changes_nothing(world: World) -> None:
    scene = build_scene(world)
    _, items = _sample(scene, 1)
    _finding(scene, items[0], severity="minor")
    response = _client(world.alice).post(
        f"/console/inspection/items/{items[0].pk}/", {"outcome": "ok"}
    )
    assert response.status_code == 400
    assert "checked already" in response.content.decode()
    with world.a.active():
        assert Finding.objects.get().severity == "minor"
