"""Load each account's opening balances from the previous system at go-live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.opening import import_opening, rows_from_csv
from tenancy.cli import resolve_tenant
from tenancy.context import use_tenant
from tenancy.principal import Principal


class Command(BaseCommand):
    help = (
        "Import opening balances from a CSV file with the columns account, arrears, tier_kwh "
        "(or 户号, 欠费, 年累计电量): each account's arrears at go-live, posted to its "
        "receivable, and the kWh it used in the tier year before go-live, which annual tiers "
        "count. Every bad row is named and nothing is imported while one is bad. Set the "
        "go-live date in the billing settings first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file (UTF-8)")
        parser.add_argument("--tenant", help="tenant slug (needed when there are several)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = resolve_tenant(options["tenant"])
        try:
            text = Path(options["file"]).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from exc
        with use_tenant(tenant):
            try:
                done = import_opening(
                    Principal.system(tenant, "import_opening command"), tenant, rows_from_csv(text)
                )
            except ValidationError as exc:
                raise CommandError("\n".join(exc.messages)) from exc
        self.stdout.write(
            f"imported {done.accounts} accounts: arrears {done.arrears} yuan, "
            f"{done.tier_kwh} kWh counted in the {done.tier_year} tier year"
        )
