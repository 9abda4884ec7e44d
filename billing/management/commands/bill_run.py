"""Price, approve and issue a site's bills for a period from the command line."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import BillRun, RunState
from billing.runs.services import approve_bill_run, approve_run, open_bill_run, price_bill_run
from billing.runs.workers import run_shards
from tenancy.cli import progress_bar, resolve_tenant
from tenancy.context import use_tenant
from tenancy.models import Site, User
from tenancy.principal import Principal
from verification.periods import ensure_ended


class Command(BaseCommand):
    help = (
        "Run the bill run of a site and period: price every postpaid account from its verified "
        "period consumption (drafts; flagged bills wait for review), or with "
        "--approve issue the drafts and post them to the ledger. Resumes a run that stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (needed when there are several)")
        parser.add_argument("--site", required=True, help="site code")
        parser.add_argument("--period", required=True, help="billing period, YYYY-MM")
        parser.add_argument("--as", dest="username", help="staff user acting (default: system)")
        parser.add_argument(
            "--approve",
            action="store_true",
            help="approve and issue the drafted run (not by who started it)",
        )
        parser.add_argument(
            "--supplementary",
            action="store_true",
            help="a catch-up run after the period's issued run: bill the accounts it held back "
            "(or added since), their earlier unbilled periods first",
        )
        parser.add_argument("--chunk", type=int, default=2000, help="accounts per transaction")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes pricing and issuing side by side (a new run's shards; 1–16)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = resolve_tenant(options["tenant"])
        with use_tenant(tenant):
            site = Site.objects.filter(code=options["site"]).first()
            if site is None:
                raise CommandError(f"no site {options['site']!r} in tenant {tenant.slug}")
            actor = self._actor(tenant, options["username"])
            try:
                if options["approve"]:
                    run = (
                        BillRun.objects.filter(
                            site=site,
                            period=options["period"],
                            supplementary=options["supplementary"],
                        )
                        .order_by("-pk")
                        .first()
                    )
                    if run is None:
                        raise CommandError("no bill run of this site and period to approve")
                    if run.shards == 1:
                        run = approve_bill_run(
                            actor, run.pk, chunk=options["chunk"], progress=self._issued
                        )
                    else:
                        run = approve_run(actor, run.pk)
                        run = run_shards(
                            "issue", run, actor, chunk=options["chunk"], progress=self._issued
                        )
                else:
                    ensure_ended(site, options["period"])
                    run = open_bill_run(
                        actor,
                        site,
                        options["period"],
                        options["workers"],
                        supplementary=options["supplementary"],
                    )
                    self.stdout.write(
                        f"{'supplementary ' if run.supplementary else ''}bill run {run.pk}: "
                        f"{run.total} accounts, {run.shards} workers"
                    )
                    if run.shards == 1:
                        run = price_bill_run(
                            actor, run.pk, chunk=options["chunk"], progress=self._priced
                        )
                    else:
                        run = run_shards(
                            "price", run, actor, chunk=options["chunk"], progress=self._priced
                        )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write("")
        self.stdout.write(
            f"{run.get_state_display()}: {run.bills} bills ({run.flagged} flagged for review), "
            f"{run.issued} issued, {len(run.held_back)} accounts held back, amount {run.amount}"
        )
        for number, reason in list(run.held_back.items())[:20]:
            self.stdout.write(f"  held back {number}: {reason}")
        if run.state == RunState.DRAFTED:
            extra = " --supplementary" if run.supplementary else ""
            self.stdout.write(f"next: a second verifier approves with --approve{extra} --as USER")

    def _actor(self, tenant: Any, username: str | None) -> Principal:
        if not username:
            return Principal.system(tenant, "bill_run command")
        user = User.objects.filter(tenant=tenant, username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active staff user {username!r} in tenant {tenant.slug}")
        return Principal.for_user(user)

    def _priced(self, run: BillRun) -> None:
        self.stdout.write(f"\rpricing {progress_bar(run.done, run.total)}", ending="")
        self.stdout.flush()

    def _issued(self, run: BillRun) -> None:
        self.stdout.write(
            f"\rissuing {progress_bar(run.issued, run.bills - run.flagged)}", ending=""
        )
        self.stdout.flush()
