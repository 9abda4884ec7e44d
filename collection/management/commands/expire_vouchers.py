"""Expire recharge cards past their last day, for operators (the daily task does the same)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from collection.services.vouchers import expire_cards
from tenancy.context import use_tenant
from tenancy.models import Tenant
from tenancy.principal import Principal


class Command(BaseCommand):
    help = (
        "Expire the unredeemed recharge cards of every batch whose last day has passed, and "
        "post what is left of a released batch's liability to income. Safe to run twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="One tenant (its slug); default: all active.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.filter(is_active=True).order_by("pk")
        if options["tenant"]:
            tenants = Tenant.objects.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"no tenant with slug {options['tenant']!r}")
        for tenant in tenants:
            with use_tenant(tenant):
                summary = expire_cards(Principal.system(tenant, "recharge card expiry"))
            self.stdout.write(
                f"{tenant.slug}: {summary.cards} cards of {summary.batches} batches expired, "
                f"{summary.amount} to income"
            )
