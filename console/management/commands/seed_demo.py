import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from console.demo import DEMO_PASSWORD, DEMO_SIM_BASE_PORT, seed_demo
from tenancy.roles import Role


class Command(BaseCommand):
    help = (
        "Create or refresh the demo tenant: two sites, staff of every role, customers, "
        "accounts and contacts. Safe to run again: it updates in place."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=os.environ.get("DEMO_PASSWORD", DEMO_PASSWORD),
            help="Password for every demo staff user (default: %(default)s).",
        )
        parser.add_argument(
            "--sim-base-port",
            type=int,
            default=int(os.environ.get("DEMO_SIM_BASE_PORT", DEMO_SIM_BASE_PORT)),
            help="Port of the first simulated gateway (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_demo(
            password=str(options["password"]), sim_base_port=int(options["sim_base_port"])
        )
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            self.style.SUCCESS(f"Demo tenant: {result.tenant.name} ({result.tenant.slug})")
        )
        self.stdout.write(
            f"Log in at http://127.0.0.1:{port}/login/ with password {result.password!r}:"
        )
        for staff in result.staff:
            scope = f"site {staff.site_code}" if staff.site_code else "all sites"
            self.stdout.write(f"  {staff.username:<16} {Role(staff.role).value:<13} {scope}")
        self.stdout.write(f"Accounts: {', '.join(result.accounts)}")
        self.stdout.write(
            f"API token of 'demo-integration' (cashier, all sites; re-issued on every seed):\n"
            f"  {result.api_token}\n"
            f"  curl -H 'Authorization: Token {result.api_token}' "
            f"http://127.0.0.1:{port}/api/v1/accounts/{result.accounts[0]}/"
        )
