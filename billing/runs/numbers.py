"""Bill numbers and payment references.

A bill's number is the year and the tenant's own serial of that year (``2026`` + 8 digits), so
it says nothing of other tenants' volumes. Numbers need not be gap-free: a bill run's worker
takes them in blocks before each chunk's transaction (committed at once, so shards never
queue on the counter); numbers of a block left unused, or of a chunk that rolled back, are
skipped. A void keeps its number.

The payment reference a payer quotes is the bill number and a Luhn check digit, so each bill
and re-bill has its own and a mistyped one is caught; credit notes have none.
"""

from __future__ import annotations

from collections import deque

from django.utils import timezone

from billing.models import BillKind
from tenancy.models import Tenant
from tenancy.sequences import take_block


def luhn_digit(digits: str) -> str:
    """The check digit that makes ``digits`` + it pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # doubled: the check digit will sit to its right
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def is_valid_reference(reference: str) -> bool:
    digits, check = reference[:-1], reference[-1:]
    return reference.isdigit() and len(reference) > 1 and luhn_digit(digits) == check


def payment_reference(number: str, kind: str) -> str:
    return "" if kind == BillKind.CREDIT_NOTE else number + luhn_digit(number)


class BillNumbers:
    """A worker's supply of the tenant's bill numbers for the current year."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.year = 0
        self.free: deque[int] = deque()

    def _year(self) -> int:
        year = timezone.localdate(timezone=self.tenant.zone).year
        if year != self.year:
            self.year, self.free = year, deque()
        return year

    def reserve(self, count: int) -> None:
        """Have at least ``count`` numbers at hand. Called outside a transaction, the block is
        committed at once."""
        year = self._year()
        if len(self.free) < count:
            self.free.extend(take_block(self.tenant, f"bill:{year}", count - len(self.free)))

    def take(self, count: int) -> list[str]:
        self.reserve(count)
        return [f"{self.year}{self.free.popleft():08d}" for _ in range(count)]
