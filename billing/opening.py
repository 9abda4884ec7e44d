"""Go-live: each account's opening balances from the previous system.

An import names, per account, its arrears at go-live (negative: credit on account) and the kWh
it had used in the tier year before go-live. Every row is checked and every bad row named
(by its line); one bad row refuses the whole import, so it is all or nothing. The arrears are
posted to the accounts' receivables against the tenant's opening-balance clearing account;
annual tiers count the imported kWh (``billing.runs.order``). The go-live date is a billing
setting and must be set first: the tier year is its year.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.models import Bill, BillingSettings, OpeningBalance
from customers.models import Account
from ledger.models import LedgerKind
from ledger.services import (
    EntrySpec,
    customer_ledger_accounts,
    post_entries,
    records_text,
    tenant_ledger_account,
)
from tenancy.audit import AuditAction, record_audit
from tenancy.models import Tenant
from tenancy.principal import Principal

LIMIT = Decimal("1000000000")
SHAPE = "_shape"  # a CSV line whose values do not match the header
POSTING_CHUNK = 2000
# Column names accepted in a file: English, or the Chinese a clerk's spreadsheet uses.
COLUMNS = {
    "account": ("account", "户号"),
    "arrears": ("arrears", "欠费", "期初欠费"),
    "tier_kwh": ("tier_kwh", "年累计电量", "本年已用电量"),
}


@dataclass(frozen=True)
class OpeningRow:
    line: int
    account: str
    arrears: Decimal
    tier_kwh: Decimal


@dataclass(frozen=True)
class Imported:
    accounts: int
    arrears: Decimal
    tier_kwh: Decimal
    tier_year: int


def rows_from_csv(text: str) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line (English or Chinese column names); a file
    that is not CSV, or lacks a column, is refused with the reason."""
    names = {alias: key for key, aliases in COLUMNS.items() for alias in aliases}
    try:
        lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error as exc:
        raise ValidationError({"csv": [_("Not a CSV file: %(error)s") % {"error": exc}]}) from exc
    if not lines:
        raise ValidationError({"csv": [_("Nothing to import.")]})
    header = [names.get(name.strip().lower(), name.strip()) for name in lines[0]]
    missing = [f"{COLUMNS[key][1]} ({key})" for key in COLUMNS if key not in header]
    if missing:
        raise ValidationError(
            {"csv": [_("The header lacks the columns: %(names)s") % {"names": ", ".join(missing)}]}
        )
    twice = sorted({f"{COLUMNS[key][1]} ({key})" for key in COLUMNS if header.count(key) > 1})
    if twice:
        raise ValidationError(
            {"csv": [_("The header names a column twice: %(names)s") % {"names": ", ".join(twice)}]}
        )
    rows = []
    for line in lines[1:]:
        if not any(value.strip() for value in line):
            continue
        row = {key: value.strip() for key, value in zip(header, line, strict=False)}
        if len(line) != len(header):
            row[SHAPE] = _("%(found)s values for %(columns)s columns") % {
                "found": len(line), "columns": len(header)
            }  # fmt: skip
        rows.append(row)
    return rows


def _amount(raw: str, places: int) -> Decimal:
    value = Decimal(raw)
    exponent = value.as_tuple().exponent
    if not value.is_finite() or abs(value) >= LIMIT or int(exponent) < -places:
        raise InvalidOperation
    return value


def check_rows(
    rows: Sequence[Mapping[str, str]], accounts: Mapping[str, Account], billed: set[int],
    imported: set[int], first_line: int = 2,
) -> tuple[list[OpeningRow], list[str]]:  # fmt: skip
    """Each row checked; the good ones and a message per bad one (a file's line numbers count
    the header as line 1; rows sent as a list count from 1)."""
    good, bad = [], []
    seen: set[str] = set()
    for index, row in enumerate(rows, start=first_line):
        problems = [row[SHAPE]] if row.get(SHAPE) else []
        if any("\x00" in str(value) for value in row.values()):
            problems.append(_("a NUL character"))
            row = {key: str(value).replace("\x00", "") for key, value in row.items()}
        number = str(row.get("account") or "").strip()
        account = accounts.get(number)
        if not number:
            problems.append(_("no account number"))
        elif account is None:
            problems.append(_("no account %(number)s") % {"number": number})
        elif number in seen:
            problems.append(_("account %(number)s appears twice") % {"number": number})
        elif account.pk in imported:
            problems.append(_("account %(number)s has its opening already") % {"number": number})
        elif account.pk in billed:
            problems.append(_("account %(number)s is billed here already") % {"number": number})
        seen.add(number)
        try:
            arrears = _amount(str(row.get("arrears") or "0"), 2)
        except (InvalidOperation, ValueError):
            problems.append(_("arrears must be yuan with at most 2 decimals"))
            arrears = Decimal(0)
        try:
            tier_kwh = _amount(str(row.get("tier_kwh") or "0"), 3)
            if tier_kwh < 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            problems.append(_("tier_kwh must be kWh, not negative, at most 3 decimals"))
            tier_kwh = Decimal(0)
        if problems:
            message = _("line %(line)s: %(problems)s")
            bad.append(message % {"line": index, "problems": "; ".join(problems)})
        elif account is not None:
            good.append(OpeningRow(index, number, arrears, tier_kwh))
    return good, bad


def import_opening(
    actor: Principal, tenant: Tenant, rows: Sequence[Mapping[str, str]],
    site_ids: Iterable[int] | None = None, first_line: int = 2,
) -> Imported:  # fmt: skip
    """Import the opening balances of ``rows`` (dicts with account, arrears, tier_kwh): all or
    nothing, every bad row named. ``site_ids`` limits the accounts to a user's sites."""
    settings = BillingSettings.for_tenant(tenant)
    if settings.go_live_on is None:
        raise ValidationError(
            _("Set the go-live date in the billing settings before importing opening balances."),
            code="no_go_live",
        )
    if not rows:
        raise ValidationError({"rows": [_("Nothing to import.")]})
    # A NUL cannot be stored or searched for: such a number is simply not found (and named).
    numbers = {str(row.get("account") or "").strip() for row in rows} - {""}
    numbers = {number for number in numbers if "\x00" not in number and len(number) <= 32}
    found = Account.objects.filter(number__in=numbers)
    if site_ids is not None:
        found = found.filter(site_id__in=list(site_ids))
    accounts = {account.number: account for account in found}
    ids = [account.pk for account in accounts.values()]
    with transaction.atomic():
        billed = set(Bill.objects.filter(account_id__in=ids).values_list("account_id", flat=True))
        imported = set(
            OpeningBalance.objects.filter(account_id__in=ids).values_list("account_id", flat=True)
        )
        good, bad = check_rows(rows, accounts, billed, imported, first_line)
        if bad:
            raise ValidationError({"rows": bad}, code="invalid_rows")
        year = settings.go_live_on.year
        balances = OpeningBalance.objects.bulk_create(
            [
                OpeningBalance(
                    tenant=tenant,
                    account=accounts[row.account],
                    site_id=accounts[row.account].site_id,
                    arrears=row.arrears,
                    tier_year=year,
                    tier_kwh=row.tier_kwh,
                    imported_by_label=actor.label[:200],
                )
                for row in good
            ]
        )
        _post(actor, tenant, balances, settings)
        total = sum((row.arrears for row in good), Decimal(0))
        kwh = sum((row.tier_kwh for row in good), Decimal(0))
        record_audit(
            actor,
            AuditAction.OPENING_BALANCES_IMPORTED,
            object_type="billing.openingbalance",
            object_ids=[balance.pk for balance in balances],
            after={"accounts": len(good), "arrears": str(total), "tier_kwh": str(kwh),
                   "tier_year": year},
        )  # fmt: skip
    return Imported(len(good), total, kwh, year)


def _post(
    actor: Principal,
    tenant: Tenant,
    balances: Sequence[OpeningBalance],
    settings: BillingSettings,
) -> None:
    """Post the arrears in entries of up to ``POSTING_CHUNK`` accounts: each account's
    receivable against the opening-balance clearing account."""
    owing = [balance for balance in balances if balance.arrears]
    if not owing:
        return
    clearing = tenant_ledger_account(
        tenant,
        LedgerKind.CLEARING,
        component="opening",
        name=records_text(gettext_noop("Opening balances clearing")),
    ).pk
    assert settings.go_live_on is not None
    specs = []
    for start in range(0, len(owing), POSTING_CHUNK):
        part = owing[start : start + POSTING_CHUNK]
        receivables = customer_ledger_accounts(
            tenant, LedgerKind.RECEIVABLE, [balance.account_id for balance in part]
        )
        lines = [(receivables[balance.account_id], balance.arrears) for balance in part]
        net = sum((balance.arrears for balance in part), Decimal(0))
        references = [f"opening:{balance.pk}" for balance in part]
        if net:  # arrears and credits that cancel out balance without it
            lines.append((clearing, -net))
            references.append("")
        specs.append(
            EntrySpec(
                "opening_balances",
                f"{part[0].pk}-{part[-1].pk}:{len(part)}",
                lines,
                settings.go_live_on,
                memo=records_text(gettext_noop("%(count)s opening balances"), count=len(part)),
                references=references,
            )
        )
    entries = post_entries(actor, specs)
    for spec in specs:
        OpeningBalance.objects.filter(
            pk__in=[int(ref.split(":")[1]) for ref in spec.references or [] if ref]
        ).update(entry_id=entries[spec.source_id])
