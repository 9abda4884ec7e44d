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
    rows = CalendarDay.objects.filter(tenant=tenant, date__gte=start, date__lte=end)
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


# The State Council's 2026 public holidays (放假) and the make-up working days (调休) that go
# with them: what a tenant's calendar starts from (the demo seeds it; tenants edit their own).
HOLIDAYS_2026 = {
    "元旦": ["2026-01-01", "2026-01-02", "2026-01-03"],
    "春节": [f"2026-02-{day}" for day in range(15, 24)],
    "清明节": ["2026-04-04", "2026-04-05", "2026-04-06"],
    "劳动节": ["2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04", "2026-05-05"],
    "端午节": ["2026-06-19", "2026-06-20", "2026-06-21"],
    "中秋节": ["2026-09-25", "2026-09-26", "2026-09-27"],
    "国庆节": [f"2026-10-0{day}" for day in range(1, 8)],
}
MAKEUP_WORKDAYS_2026 = {
    "元旦调休": ["2026-01-04"],
    "春节调休": ["2026-02-14", "2026-02-28"],
    "劳动节调休": ["2026-05-09"],
    "国庆节调休": ["2026-09-20", "2026-10-10"],
}
