"""The tenant calendar: weekends, public holidays and make-up working days (调休).

China moves weekends around its holidays: a holiday week is paid for by working a Saturday
or Sunday next to it. So a day is a working day when the calendar marks it ``workday``, not
one when it marks it ``holiday``, and otherwise when it is Monday to Friday. Due dates,
protected hours for disconnection and the holiday cash rule all ask this calendar.
"""

from __future__ import annotations

from datetime import date, timedelta

from tenancy.models import CalendarDay, CalendarDayKind, Tenant

# Long enough for the Spring Festival (up to 9 days off) plus the weekends around it.
_LOOKAHEAD_DAYS = 31


def calendar_overrides(tenant: Tenant, start: date, end: date) -> dict[date, str]:
    rows = CalendarDay.unscoped.filter(tenant=tenant, date__gte=start, date__lte=end)
    return dict(rows.values_list("date", "kind"))


def is_working_day_in(day: date, overrides: dict[date, str]) -> bool:
    kind = overrides.get(day)
    if kind == CalendarDayKind.WORKDAY:
        return True
    if kind == CalendarDayKind.HOLIDAY:
        return False
    return day.weekday() < 5


def is_working_day(tenant: Tenant, day: date) -> bool:
    return is_working_day_in(day, calendar_overrides(tenant, day, day))


def next_working_day(tenant: Tenant, day: date) -> date:
    """The first working day on or after ``day``."""
    start = day
    while True:
        end = start + timedelta(days=_LOOKAHEAD_DAYS)
        overrides = calendar_overrides(tenant, start, end)
        candidate = start
        while candidate <= end:
            if is_working_day_in(candidate, overrides):
                return candidate
            candidate += timedelta(days=1)
        start = end + timedelta(days=1)
