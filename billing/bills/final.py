"""The final bill of an account being closed (销户): the partial period from the end of its last
billed period to its final reading, priced as the bill run prices a period.

The rule (as a Chinese utility bills a move-out):

- **Span.** From 00:00 of the reading day that closed the account's last billed period (or,
  with no bill yet, 00:00 of the day it opened) to the final reading. The day of the final
  reading counts as a supply day: days ``starts_on`` ≤ d ≤ the final reading's local date.
  The span must lie in the period that follows the last billed one (an unbilled full period
  before it is billed by a run first), so it is never longer than a period.
- **Consumption.** The period's opening reading is found as a period computation finds it
  (the first effective reading at or after 00:00 of the reading day within the tenant's
  closing window, else interpolated); the closing reading is the final reading, which must be
  validated (an effective reading) before the bill can be issued. A preview prices a final
  reading that is not stored yet.
- **Proration.** The share of the period is the span's days over the full period's days
  (period "2026-10" of a site reading on the 25th: 25 September to 25 October, 30 days). The
  monthly parts scale by that share: a monthly tier limit (e.g. 200 kWh × 26/30 = 173.333 kWh),
  the free allowance of a household on minimum living support, the fixed monthly fee and the
  capacity and demand charges. Annual tiers continue from the year's earlier bills and are
  not prorated (the year's count simply stops). Every line rounds half-up to the fen.
- **Issue.** The bill is drafted and issued like a run's (its own number, due date, and the
  journal entry Dr receivable, Cr revenue and VAT payable), labelled with the period it falls
  in, so a later run of that period finds the account billed.

Prepaid accounts get no final bill: their final charge is the prepaid charging's
(``billing.prepaid.charge_account``) up to the final reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from billing.models import Bill, BillingSettings, BillKind, BillState
from billing.runs.drafting import (
    AccountRow,
    Draft,
    _usage,
    account_rows,
    bill_checks,
    draft_rows,
    run_context,
)
from billing.runs.order import account_bills, period_of, shift
from billing.runs.services import issue_bills
from billing.tariffs.pricing import AccountFacts, Priced, price, tariff_segments
from billing.tariffs.services import account_assignments
from billing.tariffs.spec import KWH
from customers.models import Account
from metering.models import Meter, MeterReplacement, MeterStatus
from tenancy.principal import Principal
from verification.effective import Effective, effective_readings
from verification.models import PeriodConsumption, PeriodStatus, VerificationSettings
from verification.periods import SEARCH_DAYS, meter_consumption, period_bounds

__all__ = ["FinalBill", "final_meter", "issue_final_bill", "price_final_bill"]


@dataclass
class FinalBill:
    """A final bill priced but not written: what the closing page previews and issue writes."""

    account: Account
    period: str
    starts_at: datetime  # the span's start (00:00 of a reading day, or of the opening day)
    ends_at: datetime  # the final reading's moment
    days: int  # supply days priced
    period_days: int  # days of the full period
    consumption: PeriodConsumption  # unsaved: the priced determinants, as a run reads them
    priced: Priced

    @property
    def total(self) -> Decimal:
        return self.priced.total


def final_meter(account: Account) -> Meter:
    """The meter the final reading is taken on: the account's one meter in service."""
    meters = list(Meter.objects.filter(account=account).exclude(status=MeterStatus.REMOVED))
    if len(meters) != 1:
        raise ValidationError(
            {"account": _("A final reading needs the account's one meter in service; it has "
                          "%(count)s.") % {"count": len(meters)}},
            code="no_final_meter",
        )  # fmt: skip
    return meters[0]


def _span_start(account: Account) -> tuple[datetime, str | None]:
    """Where the final span starts, and the last billed period (None: never billed)."""
    last = (
        Bill.objects.filter(
            account=account,
            state=BillState.ISSUED,
            kind__in=[BillKind.BILL, BillKind.REBILL],
        )
        .order_by("-period")
        .values_list("period", flat=True)
        .first()
    )
    if last is not None:
        return period_bounds(account.site, last)[1], last
    zone = account.tenant.zone
    return datetime.combine(account.opened_on, time(), zone), None


def price_final_bill(account: Account, final: Effective) -> FinalBill:
    """Price the account's final bill up to ``final`` (its final reading: stored and
    validated, or, for a preview, not stored yet). Read only."""
    site = account.site
    zone = account.tenant.zone
    start, last = _span_start(account)
    end = final.taken_at
    if end <= start:
        raise ValidationError(
            {"taken_at": _("The final reading must be after %(start)s, where the last bill "
                           "ends.") % {"start": f"{start.astimezone(zone):%Y-%m-%d %H:%M}"}},
            code="before_last_bill",
        )  # fmt: skip
    final_day = end.astimezone(zone).date()
    period = shift(last, 1) if last else period_of(site, final_day)
    period_start, period_end = period_bounds(site, period)
    if end >= period_end:
        raise ValidationError(
            {"taken_at": _("The period %(period)s ends before the final reading: bill it with a "
                           "bill run first.") % {"period": period}},
            code="period_not_billed",
        )  # fmt: skip
    if last is None and start < period_start:
        raise ValidationError(
            {"account": _("The account has periods before %(period)s that were never billed.")
             % {"period": period}},
            code="period_not_billed",
        )  # fmt: skip
    meter = final_meter(account)
    if final.meter_id != meter.pk:
        raise ValidationError({"meter": _("The final reading is of another meter.")})
    meters = list(Meter.objects.filter(account=account).order_by("installed_on", "id"))
    replacements = {
        r.old_meter_id: r
        for r in MeterReplacement.objects.select_related(
            "old_final_reading", "new_first_reading"
        ).filter(old_meter__in=meters)
    }
    window = timedelta(hours=VerificationSettings.for_tenant(account.tenant).closing_window_hours)
    found = effective_readings(
        [m.pk for m in meters], start - timedelta(days=SEARCH_DAYS), end - timedelta(microseconds=1)
    )
    # The final reading closes the span: nothing after it is read.
    found[meter.pk].effective = [
        *(e for e in found[meter.pk].effective if e.taken_at < end),
        final,
    ]
    found[meter.pk].pending = [p for p in found[meter.pk].pending if p[0] < end]
    result = meter_consumption(meters, found, replacements, start, end, window)
    if result.problems:
        raise ValidationError({"taken_at": "; ".join(result.problems)}, code="not_computable")
    total = result.values.get("total")
    if total is None or total < 0:
        raise ValidationError({"total": _("The final reading is below the opening reading.")})
    ends_on = final_day + timedelta(days=1)
    consumption = PeriodConsumption(
        tenant=account.tenant,
        account=account,
        site=site,
        period=period,
        starts_at=start,
        ends_at=datetime.combine(ends_on, time(), zone),
        status=PeriodStatus.COMPUTED,
        total=total.quantize(KWH),
        **{
            name: value.quantize(KWH) if value is not None else None
            for name, value in result.values.items()
            if name != "total"
        },
        reactive_energy=result.reactive_energy,
        max_demand=result.max_demand,
        estimated=result.estimated,
        opening=result.openings,
        closing=result.closings,
    )
    row = account_rows(Account.objects.filter(pk=account.pk))[0]
    period_days = (period_end.date() - period_start.date()).days
    days = (ends_on - start.astimezone(zone).date()).days
    ytd = account_bills([account.pk], period)[account.pk].year_to_date(period)
    priced = _price(row, consumption, period, ytd, period_days)
    return FinalBill(account, period, start, end, days, period_days, consumption, priced)


def _price(
    row: AccountRow,
    consumption: PeriodConsumption,
    period: str,
    ytd: dict[int, Decimal],
    period_days: int,
) -> Priced:
    """The run's pricing of an account (as ``billing.runs.drafting.price_account`` prices it),
    over the span's days and with the full period's length for the monthly parts."""
    ctx = run_context(consumption.site_id, period)
    own = account_assignments([row.pk]).get(row.pk, [])
    zone = ctx.tenant.zone
    starts_on = max(consumption.starts_at.astimezone(zone).date(), row.opened_on)
    ends_on = consumption.ends_at.astimezone(zone).date()
    segments = tariff_segments(
        row.pk,
        row.customer_class,
        starts_on,
        ends_on,
        [*(a for a in ctx.assignments if a.utility == row.utility), *own],
        ctx.versions,
    )
    return price(
        AccountFacts(
            row.utility,
            row.household_size,
            row.minimum_living_support,
            row.contracted_capacity_kva,
            row.opened_on,
        ),
        segments,
        _usage(consumption, ctx.common_area_shares.get(row.pk, Decimal(0))),
        period=period,
        vat_rate=ctx.settings.vat_rate(row.utility),
        year_to_date=ytd,
        period_days=period_days,
    )


def issue_final_bill(actor: Principal, final: FinalBill) -> Bill:
    """Draft and issue the final bill (call inside the closing's transaction)."""
    account = final.account
    tenant = account.tenant
    ctx = run_context(account.site_id, final.period)
    row = account_rows(Account.objects.filter(pk=account.pk))[0]
    checks = bill_checks(final.priced.total, None, ctx.settings.history_factor)
    draft = Draft(row, final.consumption, final.priced, checks, ctx, reason=_("final bill"))
    [bill_id] = draft_rows(actor, [draft], run=None)
    bill = Bill.objects.get(pk=bill_id)
    issue_bills(actor, tenant, BillingSettings.for_tenant(tenant), [bill])
    return Bill.objects.get(pk=bill_id)
