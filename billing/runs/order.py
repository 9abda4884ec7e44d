"""The order of an account's bills in the tier year.

An account's periods are billed in order from its first period here: the later of the period
of its opening and the site's go-live period (the tenant's go-live date when set, else the
site's first bill run). A period is billed when it has a live bill: a bill or re-bill that is
neither void nor credited. While an earlier period is not billed (or its bill still awaits
approval), a run holds the later period back with that reason; a supplementary run bills
the missing periods in order. The check looks back to the start of the previous calendar
year, the span annual tiers read (``year_to_date``).

Annual tiers count every earlier bill of the tier year that is not void: issued bills and
credit notes, and corrections awaiting approval as if approved (so a correction's re-pricing
of the later bills prices them as the year will stand), plus the kWh of the year before
go-live imported as the account's opening balance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.models import Bill, BillingSettings, BillKind, BillRun, BillState, OpeningBalance
from tenancy.bulk import JSONText, loads_json
from tenancy.models import Site


def shift(period: str, months: int) -> str:
    year, month = (int(part) for part in period.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def periods_from(first: str, last: str) -> list[str]:
    """The periods ``first`` … ``last``, both included."""
    found = []
    period = first
    while period <= last:
        found.append(period)
        period = shift(period, 1)
    return found


def period_of(site: Site, day: date) -> str:
    """The period whose days include ``day``: it closes on the site's reading day (1–28)."""
    period = f"{day.year:04d}-{day.month:02d}"
    return period if day.day < site.reading_day else shift(period, 1)


def window_start(period: str) -> str:
    """The earliest period an account's history is read from: January of the previous year."""
    return f"{int(period[:4]) - 1:04d}-01"


def site_start(site: Site, settings: BillingSettings) -> str | None:
    """The site's first period billed here: the go-live date's, else its first run's."""
    if settings.go_live_on is not None:
        return period_of(site, settings.go_live_on)
    return (
        BillRun.objects.filter(site=site, supplementary=False)
        .order_by("period")
        .values_list("period", flat=True)
        .first()
    )


@dataclass
class AccountBills:
    """An account's bills of the window, as the order and the annual tiers read them."""

    rows: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)
    live: dict[str, str] = field(default_factory=dict)  # period → state of its live bill
    opening: tuple[int, Decimal] | None = None

    def year_to_date(self, period: str) -> dict[int, Decimal]:
        """kWh counted towards annual tiers before ``period``, per calendar year."""
        found: dict[int, Decimal] = defaultdict(Decimal)
        if self.opening is not None:
            found[self.opening[0]] += self.opening[1]
        for bill_period, _kind, _state, quantities in self.rows:
            if bill_period < period:
                for year, kwh in quantities.items():
                    found[int(year)] += Decimal(kwh)
        return found


def account_bills(account_ids: Sequence[int], period: str) -> dict[int, AccountBills]:
    """The bills of the accounts from the window's start up to and including ``period``."""
    found: dict[int, AccountBills] = defaultdict(AccountBills)
    rows = (
        Bill.objects.filter(
            account_id__any=list(account_ids),
            period__gte=window_start(period),
            period__lte=period,
        )
        .exclude(state=BillState.VOID)
        .annotate(quantities=JSONText("annual_quantities"))
        .values_list("pk", "account_id", "period", "kind", "state", "corrects_id", "quantities")
    )
    credited: set[int] = set()
    candidates = []
    for pk, account_id, bill_period, kind, state, corrects_id, quantities in rows:
        found[account_id].rows.append((bill_period, kind, state, loads_json(quantities)))
        if kind == BillKind.CREDIT_NOTE:
            credited.add(corrects_id)
        else:
            candidates.append((pk, account_id, bill_period, state))
    for pk, account_id, bill_period, state in candidates:
        if pk not in credited:
            live = found[account_id].live
            # An issued bill wins over a draft of the same period (a re-bill awaiting approval).
            if live.get(bill_period) != BillState.ISSUED:
                live[bill_period] = state
    for account_id, year, kwh in OpeningBalance.objects.filter(
        account_id__any=list(account_ids)
    ).values_list("account_id", "tier_year", "tier_kwh"):
        found[account_id].opening = (year, kwh)
    return found


def first_period(site: Site, start: str | None, opened_on: date, period: str) -> str:
    """An account's first period to check for order before ``period``."""
    first = max(period_of(site, opened_on), window_start(period))
    return max(first, start) if start else period


def unbilled_before(bills: AccountBills, first: str, period: str) -> tuple[list[str], str | None]:
    """The account's periods from ``first`` before ``period`` with no live bill, and the hold
    reason when one of them cannot be billed now (its bill awaits approval)."""
    missing: list[str] = []
    for earlier in periods_from(first, shift(period, -1)):
        state = bills.live.get(earlier)
        if state == BillState.DRAFT:
            return missing, _("the bill of the earlier period %(period)s awaits approval") % {
                "period": earlier
            }
        if state is None:
            missing.append(earlier)
    return missing, None


def not_billed_reason(periods: Sequence[str]) -> str:
    return _("earlier period not billed (%(periods)s)") % {"periods": ", ".join(periods)}
