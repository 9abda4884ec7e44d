"""Late fees (电费违约金), as a pure function of an overdue bill's history and a date.

The rule (DOMAIN.md, Collection): a late fee accrues every day from the day after the due date
up to and including the day of payment (days = payment date − due date), on the principal
still overdue that day:

- residential customers: 1‰ a day;
- other customers: 2‰ a day while the day is in the bill's year, 3‰ for each day that falls in
  a later year than the bill's (arrears carried across a year end cost more);
- the total of a bill is at least 1 yuan once any fee has accrued.

A partial payment (or a credit note) reduces the base from the day after it: the day of
payment itself is charged on what was owed that morning, as the day count says. The total is
rounded half-up to the fen once, at the end; the day terms themselves are exact (a principal in
fen times a rate in ‰ has five decimals).

Issue 15 adds waivers and the daily refresh of the figure shown to staff and banks; the
allocation of a payment (``collection.services.allocation``) asks this module what a bill owes
on the day of payment and takes it before the bill's principal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from tenancy.money import ZERO, round_fen

RESIDENTIAL_RATE = Decimal("0.001")
CURRENT_YEAR_RATE = Decimal("0.002")
LATER_YEAR_RATE = Decimal("0.003")
MINIMUM_FEE = Decimal("1.00")


@dataclass(frozen=True)
class OverdueHistory:
    """What a late fee is computed from: the customer's class, the bill's year, its due date,
    the principal it opened with, and each later reduction of that principal (a payment's
    principal, a credit note) by its date."""

    residential: bool
    bill_year: int
    due_date: date
    principal: Decimal
    reductions: tuple[tuple[date, Decimal], ...] = field(default=())


def _days_by_year(first: date, last: date) -> Iterable[tuple[int, int]]:
    """(year, number of days) of the days ``first`` … ``last``, both included."""
    day = first
    while day <= last:
        year_end = date(day.year, 12, 31)
        end = min(year_end, last)
        yield day.year, (end - day).days + 1
        day = end + timedelta(days=1)


def _day_rate(history: OverdueHistory, year: int) -> Decimal:
    if history.residential:
        return RESIDENTIAL_RATE
    return CURRENT_YEAR_RATE if year <= history.bill_year else LATER_YEAR_RATE


def _charge(history: OverdueHistory, first: date, last: date, principal: Decimal) -> Decimal:
    if principal <= 0 or last < first:
        return ZERO
    return sum(
        (principal * _day_rate(history, year) * days for year, days in _days_by_year(first, last)),
        ZERO,
    )


def accrued_late_fee(history: OverdueHistory, on: date) -> Decimal:
    """The late fee accrued on the bill from the day after its due date up to and including
    ``on``: 0.00 when nothing was overdue, else at least 1.00 yuan."""
    first = history.due_date + timedelta(days=1)
    if on < first:
        return ZERO
    owed = history.principal
    changes: dict[date, Decimal] = {}
    for day, amount in history.reductions:
        if day < first:
            owed -= amount  # paid or credited before any day was overdue
        else:
            changes[day] = changes.get(day, ZERO) + amount
    total = ZERO
    start = first
    for day in sorted(changes):
        if day > on:
            break
        total += _charge(history, start, day, owed)  # the day itself on the morning's amount
        owed -= changes[day]
        start = day + timedelta(days=1)
    total += _charge(history, start, on, owed)
    if total <= 0:
        return ZERO
    return max(round_fen(total), MINIMUM_FEE)


def late_fee_owed(history: OverdueHistory, on: date, paid: Decimal) -> Decimal:
    """What is still owed of the bill's late fee on ``on``, after the ``paid`` part."""
    return max(accrued_late_fee(history, on) - paid, ZERO)
