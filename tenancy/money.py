"""Money as a type: exact decimals, never floats, rounded half-up to the fen where the domain
says so (each bill line, each tax part)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypedDict

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class DecimalShape(TypedDict):
    """The size of a ``DecimalField`` shared by many columns (``MONEY``, ``ENERGY``), unpacked
    into the field's arguments."""

    max_digits: int
    decimal_places: int


class OptionalDecimalShape(DecimalShape):
    """A shared ``DecimalField`` size for a column that may be empty."""

    null: bool
    blank: bool


def Money(value: str | int | Decimal) -> Decimal:
    """An exact amount in yuan with at most two decimals; a float is refused (0.1 + 0.2 is not
    money), so is a third decimal (the caller must say how to round)."""
    if isinstance(value, float | bool):
        raise TypeError("money is never a float: pass a string or a Decimal")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    if amount != amount.quantize(CENT):
        raise ValueError(f"an amount has at most two decimals: {value!r}")
    return amount.quantize(CENT)


def round_fen(value: Decimal) -> Decimal:
    """Half-up to 0.01 yuan, the rounding of every bill line."""
    return value.quantize(CENT, ROUND_HALF_UP)


def tax_part(gross: Decimal, rate: Decimal) -> Decimal:
    """The VAT inside a VAT-inclusive amount: gross − gross / (1 + rate), half-up to the fen."""
    return round_fen(gross - gross / (1 + rate))
