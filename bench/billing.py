"""Bill run benchmark: postpaid accounts priced, approved, issued and posted on PostgreSQL.

Seeds (COPY) one site of N postpaid accounts, a third each on the Beijing residential tiered
tariff, a commercial TOU tariff with tier surcharges and an industrial two-part tariff (capacity
charge, agency purchase price, funds, power factor), each with one month of verified period
consumption. Then, timed end to end: a bench user opens and prices the run, a second bench user
approves it through the same service, which issues every bill and posts it to the ledger. The
ledger is checked afterwards (every entry sums to zero, cached balances match their lines).

In the same run, the floor: ../shared/baselines/bill_baseline.py, unmodified, with the same
number of accounts, and the ratio. Each size runs in a fresh process and database, so peak RSS is
that size's; a larger size shows whether memory stays flat.

    python -m bench.billing [--accounts 100000[,1000000]] [--chunk 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date
from typing import TYPE_CHECKING

from bench.common import (
    BASELINES,
    ROOT,
    drop_database,
    production_env,
    recreate_database,
    require_free_disk,
    write_result,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime
    from typing import Any

    from django.db.backends.utils import CursorWrapper

    from billing.models import BillRun

BENCH_DB = "bars_bench_billing"
FLOOR_DB = "bars_baseline"
SEED_CHUNK = 20_000
CLASSES = ("residential", "commercial", "industrial")


def _copy(cursor: CursorWrapper, table: str, columns: str, rows: Iterable[str]) -> None:
    buffer = io.StringIO()
    buffer.writelines(rows)
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def seed(accounts: int, tenant_id: int, site_id: int, start: datetime, end: datetime) -> None:
    """Customers, premises, accounts and one computed period each, by COPY in chunks."""
    from django.db import connection, transaction

    rng = random.Random(5)
    now = "2026-11-01T00:00:00+00:00"
    with transaction.atomic(), connection.cursor() as cursor:
        for first in range(1, accounts + 1, SEED_CHUNK):
            ids = range(first, min(first + SEED_CHUNK, accounts + 1))
            _copy(
                cursor,
                "customers_customer",
                "id, tenant_id, site_id, kind, name, id_number, id_number_hash, created_at",
                (f"{i}\t{tenant_id}\t{site_id}\tperson\t用户{i}\t\t\t{now}\n" for i in ids),
            )
            _copy(
                cursor,
                "customers_premise",
                "id, tenant_id, site_id, address, building, unit, room, floor_area",
                (f"{i}\t{tenant_id}\t{site_id}\t幸福路\t{i // 100}\t1\t{i}\t88.00\n" for i in ids),
            )
            _copy(
                cursor,
                "customers_account",
                "id, tenant_id, site_id, customer_id, premise_id, number, utility, "
                "payment_mode, customer_class, status, opened_on, household_size, "
                "minimum_living_support, contracted_capacity_kva",
                (
                    f"{i}\t{tenant_id}\t{site_id}\t{i}\t{i}\t{i:012d}\telectricity\tpostpaid\t"
                    f"{CLASSES[i % 3]}\tactive\t2020-01-01\t3\tf\t"
                    f"{'400.0' if i % 3 == 2 else chr(92) + 'N'}\n"
                    for i in ids
                ),
            )
            periods = []
            for i in ids:
                kind = CLASSES[i % 3]
                total = (
                    rng.randint(50, 900) if kind != "industrial" else rng.randint(20_000, 90_000)
                )
                spike, peak, flat = total // 10, total * 3 // 10, total * 4 // 10
                valley = total - spike - peak - flat
                reactive = total // 2 if kind == "industrial" else "\\N"
                periods.append(
                    f"{tenant_id}\t{i}\t{site_id}\t2026-10\t{start.isoformat()}\t"
                    f"{end.isoformat()}\tcomputed\t\t{total}\t{spike}\t{peak}\t{flat}\t{valley}\t"
                    f"{reactive}\t\\N\tf\t[]\t[]\t{now}\n"
                )
            _copy(cursor, "verification_periodconsumption",
                  "tenant_id, account_id, site_id, period, starts_at, ends_at, status, "
                  "hold_reason, total, tou_spike, tou_peak, tou_flat, tou_valley, "
                  "reactive_energy, max_demand, estimated, opening, closing, computed_at",
                  periods)  # fmt: skip
        for table in ("customers_customer", "customers_premise", "customers_account"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {accounts})")
        for table in ("customers_account", "verification_periodconsumption", "customers_customer"):
            cursor.execute(f"ANALYZE {table}")


def run(args: argparse.Namespace) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    from billing.models import Bill, BillState
    from billing.runs.services import approve_bill_run, approve_run, open_bill_run, price_bill_run
    from billing.runs.workers import run_shards
    from billing.tariffs import services as tariff_services
    from billing.tariffs.examples import (
        BEIJING_RESIDENTIAL,
        TOU_WITH_SURCHARGES,
        two_part_industrial,
    )
    from ledger.checks import check_ledger
    from ledger.models import JournalEntry, JournalLine
    from tenancy.context import use_tenant
    from tenancy.models import Site, Tenant, User
    from tenancy.principal import Principal
    from verification.periods import period_bounds

    tenant = Tenant.objects.create(name="Billing bench", slug="billing-bench")
    with use_tenant(tenant):
        site = Site.objects.create(tenant=tenant, code="B1", name="bench", reading_day=25)
        system = Principal.system(tenant, "bench seed")
        for code, spec, customer_class in (
            ("RES", BEIJING_RESIDENTIAL, "residential"),
            ("COM", TOU_WITH_SURCHARGES, "commercial"),
            ("IND", two_part_industrial(["2026-10"]), "industrial"),
        ):
            tariff = tariff_services.create_tariff(
                system, code=code, name=code, utility="electricity"
            )
            tariff_services.add_tariff_version(
                system, tariff, effective_from=date(2020, 1, 1), spec=spec
            )
            tariff_services.assign_tariff(
                system, tariff, effective_from=date(2020, 1, 1), customer_class=customer_class
            )
        starter, approver = (
            User.objects.create(tenant=tenant, username=name, display_name=name)
            for name in ("bench-starter", "bench-approver")
        )
        start, end = period_bounds(site, "2026-10")
        seeding = time.perf_counter()
        seed(args.accounts, tenant.pk, site.pk, start, end)
        print(f"seeded {args.accounts:,} accounts in {time.perf_counter() - seeding:.1f} s",
              flush=True)  # fmt: skip
        queries = 0

        def count(
            execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
        ) -> Any:
            nonlocal queries
            queries += 1
            return execute(sql, params, many, context)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        chunks = 0

        def progress(run: BillRun) -> None:
            nonlocal chunks
            chunks += 1

        starter_actor, approver_actor = Principal.for_user(starter), Principal.for_user(approver)
        started = time.perf_counter()
        with connection.execute_wrapper(count):
            run = open_bill_run(starter_actor, site, "2026-10", shards=args.workers)
            if args.workers == 1:
                run = price_bill_run(starter_actor, run.pk, chunk=args.chunk, progress=progress)
            else:
                run = run_shards("price", run, starter_actor, chunk=args.chunk)
            priced = time.perf_counter() - started
            if args.workers == 1:
                run = approve_bill_run(approver_actor, run.pk, chunk=args.chunk, progress=progress)
            else:
                run = approve_run(approver_actor, run.pk)
                run = run_shards("issue", run, approver_actor, chunk=args.chunk)
        elapsed = time.perf_counter() - started
        peak = max(
            resource.getrusage(who).ru_maxrss / 1024
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        issued = Bill.objects.filter(state=BillState.ISSUED).count()
        checking = time.perf_counter()
        problems = check_ledger(tenant)
        check_seconds = time.perf_counter() - checking
        figures = {
            "accounts": args.accounts,
            "bills_issued": issued,
            "held_back": len(run.held_back),
            "flagged": run.flagged,
            "seconds": round(elapsed, 2),
            "pricing_seconds": round(priced, 2),
            "issuing_seconds": round(elapsed - priced, 2),
            "bills_per_s": round(issued / elapsed),
            "peak_rss_mb": round(peak, 1),
            "rss_before_run_mb": round(rss_before, 1),
            "chunk": args.chunk,
            "workers": args.workers,
            **(
                {"chunks": chunks, "queries_per_chunk": round(queries / max(chunks, 1), 1)}
                if args.workers == 1
                else {}
            ),
            "journal_entries": JournalEntry.objects.count(),
            "journal_lines": JournalLine.objects.count(),
            "amount": str(run.amount),
            "ledger_problems": len(problems),
            "ledger_check_seconds": round(check_seconds, 1),
        }
    return figures


def floor(accounts: int) -> dict:
    dsn = recreate_database(FLOOR_DB)
    try:
        done = subprocess.run(
            [sys.executable, str(BASELINES / "bill_baseline.py"), "--accounts", str(accounts),
             "--dsn", dsn],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        drop_database(FLOOR_DB)
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_size(accounts: int, chunk: int, workers: int) -> dict:
    # As deployed: production settings (no query log: DEBUG keeps every query) with the broker;
    # the run is priced and issued by this process's workers, not by tasks.
    env = production_env(recreate_database(BENCH_DB))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    try:
        output = subprocess.run(
            [sys.executable, "-m", "bench.billing", "--inner", "--accounts", str(accounts),
             "--chunk", str(chunk), "--workers", str(workers)],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()  # fmt: skip
    finally:
        drop_database(BENCH_DB)
    for line in output[:-1]:
        print(line, flush=True)
    return json.loads(output[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", default="100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="processes, one per shard")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        args.accounts = int(args.accounts)
        print(json.dumps(run(args)))
        return
    sizes = [int(size) for size in args.accounts.split(",")]
    require_free_disk(2 + max(sizes) / 100_000)
    results = []
    for size in sizes:
        figures = one_size(size, args.chunk, args.workers)
        floor_figures = floor(size)
        figures["floor_bills_per_s"] = floor_figures["bills_per_s"]
        figures["floor_peak_rss_mb"] = floor_figures["peak_rss_mb"]
        figures["ratio_to_floor"] = round(figures["bills_per_s"] / floor_figures["bills_per_s"], 3)
        print(
            f"{size:,} accounts: {figures['bills_issued']:,} bills issued and posted in "
            f"{figures['seconds']} s = {figures['bills_per_s']:,} bills/s (floor "
            f"{figures['floor_bills_per_s']:,}/s, ratio {figures['ratio_to_floor']}), peak "
            f"{figures['peak_rss_mb']} MB with {figures['workers']} workers, "
            f"ledger problems {figures['ledger_problems']}",
            flush=True,
        )
        results.append(figures)
    write_result("billing", {**results[-1], "sizes": results})


if __name__ == "__main__":
    main()
