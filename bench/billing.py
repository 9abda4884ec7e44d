"""Bill run benchmark: postpaid accounts priced, approved, issued and posted on PostgreSQL.

Seeds (COPY) one site of N postpaid accounts, a third each on the Beijing residential tiered
tariff, a commercial TOU tariff with tier surcharges and an industrial two-part tariff (capacity
charge, agency purchase price, funds, power factor), with the history a run reads in its second
month: the tenant went live on 25 August 2026 with each account's kWh of the year so far
imported as its opening balance (``OpeningBalance``), and the 2026-09 bill is issued. The
year's kWh are chosen so that about a third of the accounts cross an annual tier inside the
run; about 1 % are held back (0.5 % with a suspect reading in verification, 0.5 % whose 2026-09
bill is missing: "earlier period not billed") and 0.5 % are flagged (a 2026-09 bill far below
this one: "far from history").

Period consumption: at ``--from-readings`` sizes (100,000 by default) each account has a meter
and its two boundary readings, and the verification stage (validation of every reading, then
``compute_periods``) computes the period; that stage is timed apart and is not in the bills/s.
At larger sizes the computed period consumption is copied in. Before the timed run the
database is vacuumed and analysed (``VACUUM (ANALYZE)``, not timed): what autovacuum has done
by the time a clerk starts a run after verification, rather than work of the seeding and the
verification stage still going on beside the run. Autovacuum stays on for the run's own writes.

Timed (bills/s): a bench user opens and prices the run, a second bench user approves it through
the same service, which issues every unflagged bill and posts it to the ledger, with
``--workers`` processes (one per shard) as ``bill_run --workers`` runs them; in production each
shard is a Celery task on a worker, which this does not go through (the broker is configured
but the shards run in forked processes). Production settings (DEBUG off). Memory: the peak
resident set of the parent and of every worker process (VmHWM, sampled every 0.5 s while the
workers live). The ledger is checked afterwards (every entry sums to zero, cached balances
match their lines).

In the same run, the floor: ../shared/baselines/bill_baseline.py, unmodified, with the same
number of accounts, and the ratio. Each size runs in a fresh process and database.

    python -m bench.billing [--accounts 100000[,1000000]] [--from-readings 100000] [--chunk 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

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
    from typing import Any

    from django.db.backends.utils import CursorWrapper

    from billing.models import BillRun

BENCH_DB = "bars_bench_billing"
FLOOR_DB = "bars_baseline"
SEED_CHUNK = 20_000
CLASSES = ("residential", "commercial", "industrial")
CN = ZoneInfo("Asia/Shanghai")
NOW = "2026-11-01T00:00:00+00:00"
TIER_1 = 2880  # the annual kWh where tier 2 starts for both tiered tariffs
GO_LIVE = date(2026, 8, 25)


@dataclass(frozen=True)
class Usage:
    """One account's October (2026-10) and what it used before, all from its index."""

    total: int
    reactive: int | None
    year_before_september: int
    september: int
    september_bill: str
    held: bool  # a suspect closing reading in verification
    no_september_bill: bool  # earlier period not billed
    flagged: bool  # September's bill far below October's


def usage(i: int) -> Usage:
    rng = random.Random(i)
    kind = CLASSES[i % 3]
    total = rng.randint(50, 900) if kind != "industrial" else rng.randint(20_000, 90_000)
    september = round(total * rng.uniform(0.7, 1.3))  # a month like October
    roll = rng.random()
    if kind == "industrial":
        before = 0
    elif i % 6 < 3:  # half of the tiered accounts (a third of all) cross tier 1 in October
        before = TIER_1 - september - rng.randint(1, total - 1)
    else:
        before = rng.randint(0, TIER_1 - september - total - 1)
    # September's bill: about what October will cost (the far-from-history check passes).
    bill = f"{12_000 + september * 0.6:.2f}" if kind == "industrial" else f"{september * 0.6:.2f}"
    return Usage(
        total,
        total // 2 if kind == "industrial" else None,
        max(before, 0),
        september,
        "1.00" if 0.010 <= roll < 0.015 else bill,
        roll < 0.005,
        0.005 <= roll < 0.010,
        0.010 <= roll < 0.015,
    )


def _copy(cursor: CursorWrapper, table: str, columns: str, rows: Iterable[str]) -> None:
    buffer = io.StringIO()
    buffer.writelines(rows)
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def seed(
    accounts: int, tenant_id: int, site_id: int, from_readings: bool, versions: dict[str, int]
) -> None:
    """Customers, premises, accounts, their go-live openings and 2026-09 bills, and October's
    readings (``from_readings``) or its computed period consumption, by COPY in chunks.
    ``versions``: the tariff version of each customer class, which priced September's bills."""
    from django.db import connection, transaction

    from verification.periods import period_bounds

    start, end = period_bounds(_site(site_id), "2026-10")
    with transaction.atomic(), connection.cursor() as cursor:
        for first in range(1, accounts + 1, SEED_CHUNK):
            ids = range(first, min(first + SEED_CHUNK, accounts + 1))
            used = {i: usage(i) for i in ids}
            _copy(
                cursor,
                "customers_customer",
                "id, tenant_id, site_id, kind, name, id_number, id_number_hash, created_at",
                (f"{i}\t{tenant_id}\t{site_id}\tperson\t用户{i}\t\t\t{NOW}\n" for i in ids),
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
            _copy(
                cursor,
                "billing_openingbalance",
                "tenant_id, account_id, site_id, arrears, tier_year, tier_kwh, "
                "imported_by_label, imported_at",
                (
                    f"{tenant_id}\t{i}\t{site_id}\t0.00\t2026\t{u.year_before_september}\t"
                    f"bench\t{NOW}\n"
                    for i, u in used.items()
                    if u.year_before_september
                ),
            )
            _copy(  # the receivables September's bills were posted to (balance settled)
                cursor,
                "ledger_ledgeraccount",
                "tenant_id, kind, account_id, site_id, utility, component, holder, name, balance",
                (f"{tenant_id}\treceivable\t{i}\t{site_id}\t\t\t\t应收 {i:012d}\t0.00\n"
                 for i in ids),
            )  # fmt: skip
            _copy(
                cursor,
                "billing_bill",
                "id, tenant_id, site_id, account_id, period, kind, state, number, supplementary, "
                "utility, starts_on, ends_on, total, tax_total, consumption, opening, closing, "
                "annual_quantities, posting, checks, reason, buyer_name, buyer_tax_id, "
                "tax_code, payment_reference, issue_date, due_date, created_by_kind, "
                "created_by_label, approved_by_label, created_at, issued_at, tariff_versions",
                (
                    f"{i}\t{tenant_id}\t{site_id}\t{i}\t2026-09\tbill\tissued\t2026{i:08d}\tf\t"
                    f"electricity\t2026-08-25\t2026-09-24\t{u.september_bill}\t0.00\t"
                    f'{{"total": "{u.september}.000", "estimated": false}}\t[]\t[]\t'
                    f'{{"2026": "{u.september}.000"}}\t{{}}\t\t\t用户{i}\t\t'
                    f"1100101000000000000\t2026{i:08d}0\t2026-09-26\t2026-10-12\tsystem\t"
                    f"bench\tbench\t{NOW}\t{NOW}\t[{versions[CLASSES[i % 3]]}]\n"
                    for i, u in used.items()
                    if not u.no_september_bill
                ),
            )
            if from_readings:
                _copy(
                    cursor,
                    "metering_meter",
                    "id, tenant_id, site_id, account_id, serial_number, profile, utility, "
                    "ct_ratio, pt_ratio, status, installed_on",
                    (
                        f"{i}\t{tenant_id}\t{site_id}\t{i}\t{9_000_000 + i}\t"
                        f"{'DTSY1352' if i % 3 == 2 else 'DDSY1352'}\telectricity\t1\t1\t"
                        f"active\t2020-01-01\n"
                        for i in ids
                    ),
                )
                _copy(
                    cursor,
                    "metering_reading",
                    "tenant_id, meter_id, taken_at, read_at, source, total, tou_spike, "
                    "tou_peak, tou_flat, tou_valley, voltage, current, power, power_factor, "
                    "relay_state, extra, created_at",
                    (
                        row
                        for i, u in used.items()
                        for row in _readings(tenant_id, i, u, start, end)
                    ),
                )
            else:
                _copy(
                    cursor,
                    "verification_periodconsumption",
                    "tenant_id, account_id, site_id, period, starts_at, ends_at, status, "
                    "hold_reason, total, tou_spike, tou_peak, tou_flat, tou_valley, "
                    "reactive_energy, max_demand, estimated, opening, closing, computed_at",
                    (_period(tenant_id, site_id, i, u, start, end) for i, u in used.items()),
                )
        for table in ("customers_customer", "customers_premise", "customers_account",
                      "billing_bill", *(["metering_meter"] if from_readings else [])):  # fmt: skip
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {accounts})")
        cursor.execute(
            "INSERT INTO tenancy_sequence (tenant_id, name, next_value) VALUES (%s, %s, %s)",
            [tenant_id, "bill:2026", accounts + 1],
        )
        for table in ("customers_account", "verification_periodconsumption", "customers_customer",
                      "billing_bill", "billing_openingbalance", "metering_meter",
                      "metering_reading", "ledger_ledgeraccount"):  # fmt: skip
            cursor.execute(f"ANALYZE {table}")


def _site(site_id: int) -> Any:
    from tenancy.models import Site

    return Site.objects.select_related("tenant").get(pk=site_id)


def _parts(total: int) -> tuple[int, int, int, int]:
    spike, peak, flat = total // 10, total * 3 // 10, total * 4 // 10
    return spike, peak, flat, total - spike - peak - flat


def _period(tenant_id: int, site_id: int, i: int, u: Usage, start: datetime, end: datetime) -> str:
    spike, peak, flat, valley = _parts(u.total)
    reactive = u.reactive if u.reactive is not None else "\\N"
    status, reason = ("held_back", "可疑读数") if u.held else ("computed", "")
    values = (
        "\t".join(["\\N"] * 6)
        if u.held
        else (f"{u.total}\t{spike}\t{peak}\t{flat}\t{valley}\t{reactive}")
    )
    return (
        f"{tenant_id}\t{i}\t{site_id}\t2026-10\t{start.isoformat()}\t{end.isoformat()}\t"
        f"{status}\t{reason}\t{values}\t\\N\tf\t[]\t[]\t{NOW}\n"
    )


def _readings(tenant_id: int, i: int, u: Usage, start: datetime, end: datetime) -> list[str]:
    """The meter's readings at the period's two boundaries (register values in kWh); a held
    account's closing reading goes backwards, which validation finds suspect."""
    opening = 10_000 + i % 5000
    closing = opening - 5 if u.held else opening + u.total
    rows = []
    for taken, value, extra_values in (
        (start, opening, (1000, 0)),
        (end, closing, (1000 + (u.reactive or 0), 300)),
    ):
        spike, peak, flat, valley = _parts(value)
        extra = (
            f'{{"reactive_energy": "{extra_values[0]}.00", "max_demand": "{extra_values[1]}.0"}}'
            if i % 3 == 2
            else "{}"
        )
        read = taken + timedelta(seconds=5)
        rows.append(
            f"{tenant_id}\t{i}\t{taken.isoformat()}\t{read.isoformat()}\tpolled\t{value}.00\t"
            f"{spike}.00\t{peak}.00\t{flat}.00\t{valley}.00\t220.0\t4.1\t0.900\t0.950\t"
            f"closed\t{extra}\t{NOW}\n"
        )
    return rows


def _vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(args: argparse.Namespace) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    from billing.models import Bill, BillingSettings, BillState
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
    from verification.periods import compute_periods
    from verification.rules import validate_readings

    tenant = Tenant.objects.create(name="Billing bench", slug="billing-bench")
    from_readings = args.accounts <= args.from_readings
    with use_tenant(tenant):
        site = Site.objects.create(tenant=tenant, code="B1", name="bench", reading_day=25)
        system = Principal.system(tenant, "bench seed")
        versions: dict[str, int] = {}
        for code, spec, customer_class in (
            ("RES", BEIJING_RESIDENTIAL, "residential"),
            ("COM", TOU_WITH_SURCHARGES, "commercial"),
            ("IND", two_part_industrial(["2026-09", "2026-10"]), "industrial"),
        ):
            tariff = tariff_services.create_tariff(
                system, code=code, name=code, utility="electricity"
            )
            versions[customer_class] = tariff_services.add_tariff_version(
                system, tariff, effective_from=date(2020, 1, 1), spec=spec
            ).pk
            tariff_services.assign_tariff(
                system, tariff, effective_from=date(2020, 1, 1), customer_class=customer_class
            )
        settings = BillingSettings.stored_for_tenant(tenant)
        settings.go_live_on = GO_LIVE
        settings.save()
        starter, approver = (
            User.objects.create(tenant=tenant, username=name, display_name=name)
            for name in ("bench-starter", "bench-approver")
        )
        seeding = time.perf_counter()
        seed(args.accounts, tenant.pk, site.pk, from_readings, versions)
        print(f"seeded {args.accounts:,} accounts in {time.perf_counter() - seeding:.1f} s",
              flush=True)  # fmt: skip
        verification: dict[str, Any] = {}
        if from_readings:
            checking = time.perf_counter()
            checked = validate_readings(tenant)
            validated = time.perf_counter() - checking
            summary = compute_periods(system, site, "2026-10")
            verification = {
                "readings_validated": checked.checked,
                "suspect": checked.suspect,
                "validation_seconds": round(validated, 2),
                "compute_seconds": round(time.perf_counter() - checking - validated, 2),
                "periods_computed": summary.computed,
                "periods_held_back": summary.held_back,
                "rss_after_verification_mb": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                ),
            }
            print(f"verification: {verification}", flush=True)
        settling = time.perf_counter()
        with connection.cursor() as cursor:
            # What autovacuum has done before a run in production (see the module's docstring):
            # without it the planner reads the computed periods as seeded (none), and the
            # vacuum of what seeding and verification wrote would share the run's two cores.
            cursor.execute("VACUUM (ANALYZE)")
        print(f"vacuumed in {time.perf_counter() - settling:.1f} s", flush=True)
        queries = 0

        slow: dict[str, list[float]] = {}

        def count(
            execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
        ) -> Any:
            nonlocal queries
            queries += 1
            if not args.query_profile:
                return execute(sql, params, many, context)
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                key = " ".join(sql.split())[:110]
                slow.setdefault(key, []).append(time.perf_counter() - began)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        chunks = 0
        worker_peaks: dict[int, float] = {}

        def progress(run: BillRun) -> None:
            nonlocal chunks
            chunks += 1
            for child in multiprocessing.active_children():
                if child.pid is not None:
                    worker_peaks[child.pid] = max(
                        worker_peaks.get(child.pid, 0.0), _vm_hwm_mb(child.pid)
                    )

        starter_actor, approver_actor = Principal.for_user(starter), Principal.for_user(approver)
        started = time.perf_counter()
        with connection.execute_wrapper(count):
            run = open_bill_run(starter_actor, site, "2026-10", shards=args.workers)
            if args.workers == 1:
                run = price_bill_run(starter_actor, run.pk, chunk=args.chunk, progress=progress)
            else:
                run = run_shards("price", run, starter_actor, chunk=args.chunk, progress=progress)
            priced = time.perf_counter() - started
            if args.workers == 1:
                run = approve_bill_run(approver_actor, run.pk, chunk=args.chunk, progress=progress)
            else:
                run = approve_run(approver_actor, run.pk)
                run = run_shards("issue", run, approver_actor, chunk=args.chunk, progress=progress)
        elapsed = time.perf_counter() - started
        for key, times in sorted(slow.items(), key=lambda item: -sum(item[1]))[:20]:
            print(f"{sum(times):7.2f} s {len(times):5d}× {key}", file=sys.stderr)
        parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        issued = Bill.objects.filter(state=BillState.ISSUED, period="2026-10").count()
        crossed = _crossed(args.accounts, run.held_back)
        checking = time.perf_counter()
        problems = check_ledger(tenant)
        check_seconds = time.perf_counter() - checking
        held_reasons: dict[str, int] = {}
        for reason in run.held_back.values():
            key = reason.split("(")[0].split("：")[0].strip()
            held_reasons[key] = held_reasons.get(key, 0) + 1
        figures = {
            "accounts": args.accounts,
            "period_consumption": "from readings" if from_readings else "copied in",
            **verification,
            "bills_issued": issued,
            "held_back": len(run.held_back),
            "held_back_by_reason": held_reasons,
            "flagged": run.flagged,
            "crossing_a_tier": crossed,
            "seconds": round(elapsed, 2),
            "pricing_seconds": round(priced, 2),
            "issuing_seconds": round(elapsed - priced, 2),
            "bills_per_s": round(issued / elapsed),  # issued and posted; flagged ones wait
            "parent_peak_rss_mb": round(parent_peak, 1),
            "rss_before_run_mb": round(rss_before, 1),
            "worker_peak_rss_mb": sorted(round(peak, 1) for peak in worker_peaks.values()),
            "largest_child_peak_rss_mb": round(children_peak, 1),
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


def _crossed(accounts: int, held: dict[str, str]) -> int:
    """Accounts billed in the run whose year crossed tier 1 inside October."""
    count = 0
    for i in range(1, accounts + 1):
        u = usage(i)
        if i % 3 == 2 or f"{i:012d}" in held:
            continue
        before = u.year_before_september + u.september
        count += before < TIER_1 < before + u.total
    return count


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


def one_size(accounts: int, chunk: int, workers: int, from_readings: int) -> dict:
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
             "--chunk", str(chunk), "--workers", str(workers), "--from-readings",
             str(from_readings)],
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
    parser.add_argument(
        "--from-readings",
        type=int,
        default=100_000,
        help="sizes up to this compute period consumption from readings (timed apart)",
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--query-profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        args.accounts = int(args.accounts)
        print(json.dumps(run(args)))
        return
    sizes = [int(size) for size in args.accounts.split(",")]
    require_free_disk(2 + max(sizes) / 100_000)
    results = []
    for size in sizes:
        figures = one_size(size, args.chunk, args.workers, args.from_readings)
        floor_figures = floor(size)
        figures["floor_bills_per_s"] = floor_figures["bills_per_s"]
        figures["floor_peak_rss_mb"] = floor_figures["peak_rss_mb"]
        figures["ratio_to_floor"] = round(figures["bills_per_s"] / floor_figures["bills_per_s"], 3)
        print(
            f"{size:,} accounts: {figures['bills_issued']:,} bills issued and posted in "
            f"{figures['seconds']} s = {figures['bills_per_s']:,} bills/s (floor "
            f"{figures['floor_bills_per_s']:,}/s, ratio {figures['ratio_to_floor']}); "
            f"{figures['crossing_a_tier']:,} crossed a tier, {figures['held_back']:,} held back "
            f"{figures['held_back_by_reason']}, {figures['flagged']:,} flagged; peak RSS parent "
            f"{figures['parent_peak_rss_mb']} MB, workers {figures['worker_peak_rss_mb']} MB; "
            f"ledger problems {figures['ledger_problems']}",
            flush=True,
        )
        results.append(figures)
    write_result("billing", {**results[-1], "sizes": results})


if __name__ == "__main__":
    main()
