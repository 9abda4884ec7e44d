"""Prove the ledger: every entry sums to zero and every cached balance equals its lines."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.checks import check_ledger
from tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Check the ledger: each journal entry's lines sum to zero and each ledger account's "
        "cached balance equals the sum of its lines. Exits non-zero on any mismatch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Check one tenant (its slug); default: all.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.order_by("pk")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"no tenant with slug {options['tenant']!r}")
        failed = 0
        for tenant in tenants:
            problems = check_ledger(tenant)
            for problem in problems:
                self.stderr.write(f"{tenant.slug}: {problem}")
            failed += len(problems)
            self.stdout.write(
                f"{tenant.slug}: {'ok' if not problems else f'{len(problems)} problems'}"
            )
        if failed:
            raise CommandError(f"the ledger has {failed} problems")
        self.stdout.write(self.style.SUCCESS("ledger ok"))
