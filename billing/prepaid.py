"""Prepaid charging (远程费控): the balance lives on the platform, in the account's wallet.

At the tenant's interval (hourly by default) each prepaid account's validated consumption since
its last charge is priced (TOU and tiers included, tiers continuing from the month's and year's
earlier charges) and posted against its wallet: Dr wallet, Cr revenue, Cr VAT payable. The
reading pair is the source: a charge runs from the previous charge's closing reading to the
latest effective reading, it is unique per (account, opening reading), and the account row is
locked while it is charged, so concurrent tasks never charge the same consumption twice. A
suspect reading stops the stretch before it until a verifier has dealt with it.

Closing an account (销户) charges up to its final reading (``until``): the pair is the last
charge's closing reading and that validated final reading, whatever waits in the verification
queue between them. The consumption of a pair depends on its two ends alone, and the account
takes no further charge, so a reading held back between them must not make the closing charge
nothing.

The collection issue adds the thresholds, alerts and relay control on top of the wallet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from billing.models import BillingSettings, OpeningBalance, PrepaidCharge, TariffVersion
from billing.runs.drafting import RevenueCredits, posting
from billing.tariffs.pricing import (
    AccountFacts,
    Priced,
    Usage,
    Version,
    price,
    tariff_segments,
)
from billing.tariffs.services import account_assignments, class_assignments
from billing.tariffs.spec import (
    KWH,
    PricingError,
    TariffSpec,
)
from customers.models import Account, AccountStatus, PaymentMode
from ledger.models import LedgerKind
from ledger.services import EntrySpec, customer_ledger_accounts, post_entries, records_text
from metering.models import Meter
from tenancy.audit import AuditAction, record_audit
from tenancy.models import Tenant
from tenancy.principal import Principal
from verification.effective import REGISTERS, Effective, consumption_between, effective_readings


@dataclass
class ChargeSummary:
    accounts: int = 0
    charged: int = 0
    amount: Decimal = Decimal("0.00")
    skipped: dict[str, str] = field(default_factory=dict)


def _effective_from(data: dict[str, Any]) -> Effective:
    """Rebuild the reading a charge closed on (stored as ``Effective.describe()``)."""
    return Effective(
        data["meter"],
        datetime.fromisoformat(data["taken_at"]),
        {name: Decimal(data[name]) if name in data else None for name in REGISTERS},
        data["source"],
        reading_id=data.get("reading"),
        correction_id=data.get("correction"),
    )


def _opening_and_closing(
    account: Account,
    meter_ids: list[int],
    last: PrepaidCharge | None,
    now: datetime,
    until: Effective | None = None,
) -> tuple[Effective | None, Effective | None]:
    """The pair to charge: from the last charge's closing reading (or the account's first
    effective reading) to the latest effective reading before anything still pending, or to
    ``until`` (a closing's final reading) when it is given."""
    start = (
        last.to_taken_at
        if last
        else timezone.make_aware(datetime.combine(account.opened_on, datetime.min.time()))
    )
    found = effective_readings(meter_ids, start, now)
    pending = min(
        (at for readings in found.values() for at, _why in readings.pending), default=None
    )
    effective = sorted(
        (e for readings in found.values() for e in readings.effective),
        key=lambda e: e.taken_at,
    )
    if until is not None:
        effective = [e for e in effective if e.taken_at < until.taken_at]
        opening = _effective_from(last.closing) if last else (effective[0] if effective else None)
        after_opening = opening is not None and until.taken_at > opening.taken_at
        return opening, (until if after_opening else None)
    if pending is not None:
        effective = [e for e in effective if e.taken_at < pending]
    opening = _effective_from(last.closing) if last else (effective[0] if effective else None)
    later = [e for e in effective if opening is not None and e.taken_at > opening.taken_at]
    return opening, (later[-1] if later else None)


def _to_date(account: Account, since: datetime, kind: str) -> dict[Any, Decimal]:
    """kWh charged earlier this year (by year, with the tier-year kWh of its go-live opening
    balance) or this month (by YYYY-MM)."""
    totals: dict[Any, Decimal] = defaultdict(Decimal)
    if kind == "year":
        for year, kwh in OpeningBalance.objects.filter(account=account).values_list(
            "tier_year", "tier_kwh"
        ):
            totals[year] += kwh
    field_name = "annual_quantities" if kind == "year" else "consumption"
    rows = PrepaidCharge.objects.filter(account=account, to_taken_at__gte=since)
    for quantities in rows.values_list(field_name, flat=True):
        source = quantities if kind == "year" else quantities.get("months", {})
        for key, kwh in source.items():
            totals[int(key) if kind == "year" else key] += Decimal(kwh)
    return totals


def charge_account(
    actor: Principal,
    account_id: int,
    *,
    now: datetime | None = None,
    until: Effective | None = None,
) -> PrepaidCharge | None:
    """Charge one prepaid account's new validated consumption; None when there is none.
    ``until``: the closing's final reading (validated), charged from the last charge's closing
    reading even past readings still pending before it."""
    now = now or (until.taken_at + timedelta(microseconds=1) if until else timezone.now())
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        tenant = Tenant.objects.get(pk=account.tenant_id)
        last = PrepaidCharge.objects.filter(account=account).order_by("-to_taken_at").first()
        meter_ids = list(Meter.objects.filter(account=account).values_list("pk", flat=True))
        if not meter_ids:
            return None
        opening, closing = _opening_and_closing(account, meter_ids, last, now, until)
        if opening is None or closing is None:
            return None
        used = {
            name: value.quantize(KWH) if value is not None else None
            for name, value in consumption_between(opening, closing).items()
        }
        total = used.get("total")
        if total is None or total <= 0:
            return None
        zone = tenant.zone
        starts_on = opening.taken_at.astimezone(zone).date()
        ends_on = closing.taken_at.astimezone(zone).date() + timedelta(days=1)
        assignments = [
            *class_assignments(account.site_id, account.customer_class, account.utility),
            *account_assignments([account.pk]).get(account.pk, []),
        ]
        versions = [
            Version(v.pk, v.tariff_id, v.effective_from, TariffSpec.parse(v.spec))
            for v in TariffVersion.objects.filter(
                tenant=tenant, tariff_id__in={a.tariff_id for a in assignments}
            )
        ]
        year_start = timezone.make_aware(datetime(starts_on.year, 1, 1), zone)
        month_start = timezone.make_aware(datetime(starts_on.year, starts_on.month, 1), zone)
        settings = BillingSettings.for_tenant(tenant)
        priced = price(
            AccountFacts(
                account.utility,
                account.household_size,
                account.minimum_living_support,
                account.contracted_capacity_kva,
                account.opened_on,
            ),
            tariff_segments(
                account.pk, account.customer_class, starts_on, ends_on, assignments, versions
            ),
            Usage(total, {name: used.get(name) for name in REGISTERS[1:]}),
            period=f"{ends_on - timedelta(days=1):%Y-%m}",
            vat_rate=settings.vat_rate(account.utility),
            year_to_date=_to_date(account, year_start, "year"),
            month_to_date=_to_date(account, month_start, "month"),
        )
        charge = PrepaidCharge.objects.create(
            tenant=tenant,
            account=account,
            site_id=account.site_id,
            from_taken_at=opening.taken_at,
            to_taken_at=closing.taken_at,
            opening=opening.describe(),
            closing=closing.describe(),
            consumption={
                **{name: str(value) for name, value in used.items() if value is not None},
                "months": {m: str(kwh) for m, kwh in priced.monthly_quantities.items()},
            },
            lines=[
                {
                    "component": line.component,
                    "label": line.label,
                    "label_en": line.label_en,
                    "quantity": str(line.quantity),
                    "unit_price": str(line.unit_price),
                    "amount": str(line.amount),
                    "tax": str(line.tax),
                }
                for line in priced.lines
            ],
            amount=priced.total,
            tax=priced.tax,
            annual_quantities={y: str(kwh) for y, kwh in priced.annual_quantities.items()},
            tariff_versions=priced.tariff_versions,
        )
        if priced.total:
            post_entries(actor, [_charge_entry(tenant, account, charge, priced)])
        record_audit(
            actor,
            AuditAction.PREPAID_CHARGED,
            charge,
            after={"account": account.number, "amount": charge.amount, "kwh": total},
        )
    return charge


def _charge_entry(
    tenant: Tenant, account: Account, charge: PrepaidCharge, priced: Priced
) -> EntrySpec:
    """Dr the wallet, Cr revenue and VAT payable, as a bill's posting is credited."""
    wallet = customer_ledger_accounts(tenant, LedgerKind.WALLET, [account.pk])[account.pk]
    credits = RevenueCredits(tenant)
    credits.add(account.utility, posting(priced))
    return EntrySpec(
        "prepaid_charge",
        str(charge.pk),
        [(wallet, charge.amount), *credits.lines()],
        timezone.localdate(timezone=tenant.zone),
        memo=records_text(
            gettext_noop("Prepaid charge %(account)s from %(time)s"),
            account=account.number,
            time=f"{timezone.localtime(charge.from_taken_at, tenant.zone):%Y-%m-%d %H:%M}",
        ),
        site_id=account.site_id,
    )


def charge_prepaid_accounts(
    actor: Principal, tenant: Tenant, site_ids: frozenset[int] | None = None
) -> ChargeSummary:
    """Charge every active prepaid account of the tenant, or of these sites (each account in
    its own transaction, so one that cannot be priced does not stop the others)."""
    summary = ChargeSummary()
    accounts = Account.objects.filter(
        tenant=tenant, payment_mode=PaymentMode.PREPAID, status=AccountStatus.ACTIVE
    )
    if site_ids is not None:
        accounts = accounts.filter(site_id__in=site_ids)
    numbered = accounts.values_list("pk", "number").order_by("pk")
    for account_id, number in numbered.iterator(chunk_size=2000):
        summary.accounts += 1
        try:
            charge = charge_account(actor, account_id)
        except PricingError as exc:
            summary.skipped[number] = str(exc)
            continue
        if charge is not None:
            summary.charged += 1
            summary.amount += charge.amount
    record_audit(
        actor,
        AuditAction.PREPAID_CHARGED,
        object_type="billing.prepaidcharge",
        after={"accounts": summary.accounts, "charged": summary.charged,
               "amount": summary.amount, "skipped": summary.skipped},
    )  # fmt: skip
    return summary
