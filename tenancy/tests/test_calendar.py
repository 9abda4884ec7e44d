"""Working days follow the tenant's calendar: holidays off, make-up Saturdays and Sundays on."""

from datetime import date

import pytest

from tenancy.calendar import (
    HOLIDAYS_2026,
    MAKEUP_WORKDAYS_2026,
    is_working_day,
    next_working_day,
)
from tenancy.models import CalendarDayKind
from tests.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def calendar_2026(world: World) -> World:
    for kind, table in (
        (CalendarDayKind.HOLIDAY, HOLIDAYS_2026),
        (CalendarDayKind.WORKDAY, MAKEUP_WORKDAYS_2026),
    ):
        for days in table.values():
            for day in days:
                world.a.calendar_day(date.fromisoformat(day), kind=kind)
    return world


@pytest.mark.parametrize(
    "day,expected",
    [
        (date(2026, 2, 13), date(2026, 2, 13)),  # Friday before the Spring Festival
        (date(2026, 2, 14), date(2026, 2, 14)),  # Saturday worked (调休)
        (date(2026, 2, 15), date(2026, 2, 24)),  # nine days off: back on Tuesday the 24th
        (date(2026, 2, 21), date(2026, 2, 24)),
        (date(2026, 2, 28), date(2026, 2, 28)),  # the second make-up Saturday
        (date(2026, 10, 1), date(2026, 10, 8)),  # National Day week
        (date(2026, 10, 10), date(2026, 10, 10)),  # Saturday worked after it
        (date(2026, 11, 28), date(2026, 11, 30)),  # an ordinary weekend
    ],
)
def test_next_working_day_reads_the_calendar(
    calendar_2026: World, day: date, expected: date
) -> None:
    with calendar_2026.a.active():
        assert next_working_day(calendar_2026.a.tenant, day) == expected


def test_another_tenant_with_no_calendar_has_only_weekends(calendar_2026: World) -> None:
    tenant_b = calendar_2026.b.tenant
    with calendar_2026.b.active():
        assert next_working_day(tenant_b, date(2026, 2, 16)) == date(2026, 2, 16)
        assert not is_working_day(tenant_b, date(2026, 2, 14))


def test_the_api_answers_for_the_callers_tenant(calendar_2026: World) -> None:
    client = calendar_2026.client_for(calendar_2026.bob)
    answer = client.get("/api/v1/calendar/next-working-day/", {"date": "2026-02-15"}).json()
    assert answer == {
        "date": "2026-02-15",
        "is_working_day": False,
        "next_working_day": "2026-02-24",
    }
    bad = client.get("/api/v1/calendar/next-working-day/", {"date": "15/02/2026"})
    assert bad.status_code == 400 and "date" in bad.json()["error"]["fields"]


def test_a_day_is_listed_once(calendar_2026: World) -> None:
    response = calendar_2026.client_for(calendar_2026.alice).post(
        "/api/v1/calendar/", {"date": "2026-10-01", "kind": "holiday"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["date"] == [
        "日历中已有该日期。"
    ]  # "This day is in the calendar already."


def test_a_make_up_working_day_must_be_a_saturday_or_a_sunday(world: World) -> None:
    client = world.client_for(world.alice)
    wednesday = client.post(
        "/api/v1/calendar/", {"date": "2026-12-02", "kind": "workday"}, format="json"
    )
    assert wednesday.status_code == 400
    assert wednesday.json()["error"]["fields"]["date"] == [
        "调休上班日必须是星期六或星期日。"  # "A make-up working day is a Saturday or a Sunday."
    ]
    saturday = client.post(
        "/api/v1/calendar/", {"date": "2026-12-05", "kind": "workday"}, format="json"
    )
    assert saturday.status_code == 201, saturday.content


def test_a_holiday_cannot_become_a_make_up_working_day_on_a_weekday(world: World) -> None:
    day = world.a.calendar_day(date(2026, 12, 2))  # a Wednesday holiday
    answer = world.client_for(world.alice).patch(
        f"/api/v1/calendar/{day.pk}/", {"kind": "workday"}, format="json"
    )
    assert answer.status_code == 400 and "date" in answer.json()["error"]["fields"]
    with world.a.active():
        day.refresh_from_db()
    assert day.kind == CalendarDayKind.HOLIDAY
