"""Late fees (电费违约金) as worked examples of DOMAIN.md's rule, and its properties.

The rule: from the day after the due date up to and including the day of payment (days =
payment date − due date), on the principal overdue that day; residential 1‰ a day; others 2‰
a day in the bill's year and 3‰ for each day in a later year; at least 1 yuan per bill.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from collection.late_fees import OverdueHistory, accrued_late_fee, late_fee_owed


def residential(principal: str, due: date, *reductions: tuple[date, str]) -> OverdueHistory:
    return OverdueHistory(
        True, due.year, due, Decimal(principal), tuple((d, Decimal(a)) for d, a in reductions)
    )


def business(
    principal: str, due: date, bill_year: int, *reductions: tuple[date, str]
) -> OverdueHistory:
    return OverdueHistory(
        False, bill_year, due, Decimal(principal), tuple((d, Decimal(a)) for d, a in reductions)
    )


def test_a_residential_bill_paid_20_days_late_owes_1_per_mille_a_day() -> None:
    # 100.00 × 0.001 × 20 days (03-11 … 03-30) = 2.00
    assert accrued_late_fee(residential("100.00", date(2026, 3, 10)), date(2026, 3, 30)) == Decimal(
        "2.00"
    )


def test_nothing_is_owed_on_the_due_date_and_the_first_late_day_counts() -> None:
    history = residential("5000.00", date(2026, 3, 10))
    assert accrued_late_fee(history, date(2026, 3, 10)) == Decimal("0.00")
    assert accrued_late_fee(history, date(2026, 3, 1)) == Decimal("0.00")
    # One day late: 5000.00 × 0.001 = 5.00
    assert accrued_late_fee(history, date(2026, 3, 11)) == Decimal("5.00")


def test_a_small_fee_is_raised_to_the_one_yuan_minimum() -> None:
    # 100.00 × 0.001 × 3 days = 0.30, below the minimum: 1.00
    assert accrued_late_fee(residential("100.00", date(2026, 3, 10)), date(2026, 3, 13)) == Decimal(
        "1.00"
    )
    # A fen overdue for a day is still a yuan.
    assert accrued_late_fee(residential("0.01", date(2026, 3, 10)), date(2026, 3, 11)) == Decimal(
        "1.00"
    )


def test_the_total_is_rounded_half_up_to_the_fen_once() -> None:
    # 333.33 × 0.001 × 5 = 1.66665 → 1.67
    assert accrued_late_fee(residential("333.33", date(2026, 3, 10)), date(2026, 3, 15)) == Decimal(
        "1.67"
    )


def test_a_business_bill_in_its_own_year_owes_2_per_mille_a_day() -> None:
    # 1000.00 × 0.002 × 20 days (11-21 … 12-10) = 40.00
    history = business("1000.00", date(2026, 11, 20), 2026)
    assert accrued_late_fee(history, date(2026, 12, 10)) == Decimal("40.00")


def test_days_in_a_later_year_cost_3_per_mille_for_business_customers() -> None:
    # Bill of 2026 due 2026-12-20, paid 2027-01-10: 21 days.
    # 12-21 … 12-31: 11 days × 0.002 × 1000.00 = 22.00
    # 01-01 … 01-10: 10 days × 0.003 × 1000.00 = 30.00          total 52.00
    history = business("1000.00", date(2026, 12, 20), 2026)
    assert accrued_late_fee(history, date(2027, 1, 10)) == Decimal("52.00")
    # A residential customer pays 1‰ whatever the year: 21 × 0.001 × 1000.00 = 21.00
    home = residential("1000.00", date(2026, 12, 20))
    assert accrued_late_fee(home, date(2027, 1, 10)) == Decimal("21.00")


def test_a_december_bill_due_in_january_is_in_a_later_year_from_its_first_late_day() -> None:
    # Period 2026-12, due 2027-01-15, paid 2027-01-25: 10 days × 0.003 × 500.00 = 15.00
    history = business("500.00", date(2027, 1, 15), 2026)
    assert accrued_late_fee(history, date(2027, 1, 25)) == Decimal("15.00")


def test_a_partial_payment_reduces_the_base_from_the_day_after_it() -> None:
    # 200.00 due 03-10; 100.00 of principal paid on 03-20; asked on 03-30:
    # 03-11 … 03-20: 10 days × 0.001 × 200.00 = 2.00 (the day of payment on the morning's 200)
    # 03-21 … 03-30: 10 days × 0.001 × 100.00 = 1.00                       total 3.00
    history = residential("200.00", date(2026, 3, 10), (date(2026, 3, 20), "100.00"))
    assert accrued_late_fee(history, date(2026, 3, 30)) == Decimal("3.00")
    # Of which 2.00 was paid with the first payment: 1.00 still owed.
    assert late_fee_owed(history, date(2026, 3, 30), Decimal("2.00")) == Decimal("1.00")


def test_a_payment_before_the_due_date_reduces_every_late_day() -> None:
    # 300.00 due 03-10, 200.00 paid on 03-05: 100.00 overdue for 15 days × 0.001 = 1.50
    history = residential("300.00", date(2026, 3, 10), (date(2026, 3, 5), "200.00"))
    assert accrued_late_fee(history, date(2026, 3, 25)) == Decimal("1.50")


def test_a_bill_paid_in_full_accrues_nothing_more() -> None:
    history = residential("100.00", date(2026, 3, 10), (date(2026, 3, 20), "100.00"))
    # 10 days × 0.001 × 100.00 = 1.00, then nothing
    assert accrued_late_fee(history, date(2026, 3, 20)) == Decimal("1.00")
    assert accrued_late_fee(history, date(2026, 6, 20)) == Decimal("1.00")


# --- properties ----------------------------------------------------------------------------

principals = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
due_dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
delays = st.integers(min_value=-30, max_value=800)


@st.composite
def histories(draw: st.DrawFn, kind: bool | None = None) -> OverdueHistory:
    due = draw(due_dates)
    principal = draw(principals)
    paid = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=-20, max_value=700),
                st.decimals(min_value=Decimal("0.01"), max_value=principal, places=2),
            ),
            max_size=4,
        )
    )
    return OverdueHistory(
        draw(st.booleans()) if kind is None else kind,
        due.year - draw(st.integers(min_value=0, max_value=1)),
        due,
        principal,
        tuple((due + timedelta(days=days), amount) for days, amount in paid),
    )


@given(histories(), delays, st.integers(min_value=1, max_value=60))
def test_the_fee_never_falls_as_the_payment_date_moves_later(
    history: OverdueHistory, delay: int, more: int
) -> None:
    on = history.due_date + timedelta(days=delay)
    assert accrued_late_fee(history, on) <= accrued_late_fee(history, on + timedelta(days=more))


@given(histories(), delays)
def test_the_fee_is_zero_until_overdue_then_at_least_a_yuan_in_fen(
    history: OverdueHistory, delay: int
) -> None:
    fee = accrued_late_fee(history, history.due_date + timedelta(days=delay))
    assert fee == fee.quantize(Decimal("0.01"))
    if delay <= 0:
        assert fee == 0
    else:
        assert fee == 0 or fee >= Decimal("1.00")


@given(principals, due_dates, st.integers(min_value=1, max_value=800))
def test_a_constant_residential_principal_owes_principal_times_days_per_mille(
    principal: Decimal, due: date, days: int
) -> None:
    history = OverdueHistory(True, due.year, due, principal)
    expected = (principal * Decimal("0.001") * days).quantize(Decimal("0.01"), "ROUND_HALF_UP")
    assert accrued_late_fee(history, due + timedelta(days=days)) == max(expected, Decimal("1.00"))


@given(principals, st.integers(min_value=2021, max_value=2029), st.integers(1, 300))
def test_a_business_principal_owes_2_per_mille_in_its_year_and_3_after(
    principal: Decimal, year: int, days: int
) -> None:
    due = date(year, 1, 1)  # every late day of up to 300 falls in the bill's year
    in_year = OverdueHistory(False, year, due, principal)
    later = OverdueHistory(False, year - 1, due, principal)

    def rate(per_mille: str) -> Decimal:
        raw = principal * Decimal(per_mille) * days
        return max(raw.quantize(Decimal("0.01"), "ROUND_HALF_UP"), Decimal("1.00"))

    assert accrued_late_fee(in_year, due + timedelta(days=days)) == rate("0.002")
    assert accrued_late_fee(later, due + timedelta(days=days)) == rate("0.003")


@given(histories(kind=False), delays)
def test_a_business_customer_never_owes_less_than_a_household(
    history: OverdueHistory, delay: int
) -> None:
    on = history.due_date + timedelta(days=delay)
    household = OverdueHistory(
        True, history.bill_year, history.due_date, history.principal, history.reductions
    )
    assert accrued_late_fee(history, on) >= accrued_late_fee(household, on)


@given(histories(), delays)
def test_paying_part_of_the_principal_never_raises_the_fee(
    history: OverdueHistory, delay: int
) -> None:
    on = history.due_date + timedelta(days=delay)
    unpaid = OverdueHistory(
        history.residential, history.bill_year, history.due_date, history.principal
    )
    assert accrued_late_fee(history, on) <= accrued_late_fee(unpaid, on)
