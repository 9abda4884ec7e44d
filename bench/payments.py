"""Payment posting benchmark: payments per second through ``post_payment`` on PostgreSQL.

Seeds (COPY, then the billing services) one tenant of 1,000 postpaid accounts with open bills
and 200 prepaid accounts: every postpaid account has two to four issued bills (2026-08 to
2026-11, 60-300 yuan each), those of 2026-08 and 2026-09 overdue by 40 and 10 days on the day
of the run, so their late fees are allocated before their principal; a fifth of the postpaid
accounts carry go-live arrears (imported through ``billing.opening.import_opening``, which
posts them). The bills are issued through ``billing.runs.services.issue_bills``, which posts
them to the receivables as a bill run does; their due dates are then set relative to today.
One more account (the "hot" one) has twelve open bills, for the one-account case.

Timed (payments/s): payments posted through ``collection.services.payments.post_payment``, the
whole service (lock, idempotency, allocation with late fees, journal entry, payment and
allocation rows, receipt number, audit event), each in its own transaction as the API's view
posts it, by writer processes forked from a warmed-up parent (as gunicorn's workers are
processes), each with its own database connection, released together; the rate is the
payments of a case over the time from the first writer's start to the last one's end. Not
timed: the HTTP request, DRF's parsing, authentication and the answer's serialisation (what
``bench.api`` measures). Cases, each after the one before in one database:

- ``one_writer``: one process, bank collection (代收) by an API client actor, 1,000 payments;
- ``eight_writers``: eight processes, bank collection, 4,000 payments (a fifth of them prepaid
  top-ups, the rest paying bills; the accounts drawn at random, so writers meet on an account
  now and then);
- ``one_account``: fifty processes posting ten payments each to the hot account;
- ``counter_cash``: eight cashiers (staff actors), each with an open shift, cash at the
  counter, 2,000 payments (each also locks its cashier's shift, as at the counter).

After each case: the ledger check (every entry sums to zero, every cached balance equals its
lines), receipts numbered 1…n with no gap and no duplicate and one per payment, no payment
lost, and no allocation above its amount (a payment's allocations at most its amount and the
credit it used; a bill's principal paid at most its total).

CPU per payment: Python is the writers' process CPU time (``time.process_time``) over the
timed loop; PostgreSQL is the CPU of the writers' backends (utime + stime of
``/proc/<pid>/stat`` for each connection's ``pg_backend_pid()``, read by the writer before and
after the loop; PostgreSQL runs on this machine). Not counted: the WAL writer, checkpointer and
autovacuum. The receipt counter's lock: every 8th payment of each writer times from the
statement that takes the receipt number returning to the payment's commit (an ``on_commit``
callback: the commit has returned), median, p99 and max.

Before each case the tables the payments write are analysed (``ANALYZE``, not timed): what
autovacuum does in production; it is off on this machine's PostgreSQL, and without it the
planner reads a payment's idempotency key by the tenant's index, a scan of every payment.
Before the first case the parent tops up every prepaid account once (not timed: it warms the
parent up, and the tables have a history).

Statements per payment: counted for every payment by a wrapper on the writers' connections
(``execute`` only: the four COPYs of a payment, and BEGIN / COMMIT, go past it; the test
``collection/tests/test_payment_statements.py`` pins the whole list). The first payment of an
account creates its wallet (a few statements more): most of the first case's accounts pay for
the first time, fewer of the later ones'.
Production settings (DEBUG off, no query log).

In the same run, the floor: ../shared/baselines/payment_baseline.py, unmodified, with 1 writer
(1,000 payments), 8 writers (4,000 payments) on 1,000 accounts and 50 writers (500 payments) on
one account, and the ratio of each case to its floor. Timings on this shared machine move from
run to run; ratios measured together do not (as much).

    python -m bench.payments [--accounts 1000] [--payments 4000] [--skip-floor]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import (
    BASELINES,
    ROOT,
    drop_database,
    production_env,
    recreate_database,
    write_result,
)

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

    from tenancy.principal import Principal

BENCH_DB = "bars_bench_payments"
FLOOR_DB = "bars_baseline"
NOW = "2026-11-01T00:00:00+00:00"
GO_LIVE = date(2026, 8, 25)
PERIODS = ("2026-08", "2026-09", "2026-10", "2026-11")
DUE_IN_DAYS = (-40, -10, 5, 20)  # each period's due date from the day of the run
HOT_BILLS = 12
LOCK_SAMPLE_EVERY = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRITTEN = (
    "collection_payment", "collection_paymentallocation", "collection_receipt",
    "ledger_journalentry", "ledger_journalline", "ledger_ledgeraccount", "tenancy_auditevent",
)  # fmt: skip


@dataclass(frozen=True)
class World:
    tenant_id: int
    postpaid: list[int]
    prepaid: list[int]
    hot: int


def _copy(cursor: CursorWrapper, table: str, columns: str, rows: Any) -> None:
    buffer = io.StringIO()
    buffer.writelines(rows)
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def seed(postpaid: int, prepaid: int) -> World:
    """The tenant, its accounts, go-live arrears and issued bills (see the module's overview)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from billing.models import Bill, BillingSettings
    from billing.opening import import_opening
    from billing.runs.services import issue_bills
    from tenancy.context import use_tenant
    from tenancy.models import Site, Tenant
    from tenancy.principal import Principal

    tenant = Tenant.objects.create(name="Payments bench", slug="payments-bench")
    system = Principal.system(tenant, "bench seed")
    rng = random.Random(14)
    total = postpaid + prepaid + 1
    with use_tenant(tenant):
        site = Site.objects.create(tenant=tenant, code="P1", name="bench", reading_day=25)
        settings = BillingSettings.stored_for_tenant(tenant)
        settings.go_live_on = GO_LIVE
        settings.save()
        ids = range(1, total + 1)
        hot = total

        def mode(i: int) -> str:
            return "prepaid" if postpaid < i < hot else "postpaid"

        def customer_class(i: int) -> str:
            return "commercial" if i % 4 == 0 else "residential"

        with transaction.atomic(), connection.cursor() as cursor:
            _copy(
                cursor,
                "customers_customer",
                "id, tenant_id, site_id, kind, name, id_number, id_number_hash, created_at",
                (f"{i}\t{tenant.pk}\t{site.pk}\tperson\t用户{i}\t\t\t{NOW}\n" for i in ids),
            )
            _copy(
                cursor,
                "customers_premise",
                "id, tenant_id, site_id, address, building, unit, room, floor_area",
                (f"{i}\t{tenant.pk}\t{site.pk}\t幸福路\t{i // 100}\t1\t{i}\t88.00\n" for i in ids),
            )
            _copy(
                cursor,
                "customers_account",
                "id, tenant_id, site_id, customer_id, premise_id, number, utility, "
                "payment_mode, customer_class, status, opened_on, household_size, "
                "minimum_living_support",
                (
                    f"{i}\t{tenant.pk}\t{site.pk}\t{i}\t{i}\t{i:012d}\telectricity\t{mode(i)}\t"
                    f"{customer_class(i)}\tactive\t2020-01-01\t3\tf\n"
                    for i in ids
                ),
            )
            for table in ("customers_customer", "customers_premise", "customers_account"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {total})")
        # Go-live arrears for a fifth of the postpaid accounts, through the import (it posts).
        import_opening(
            system,
            tenant,
            [
                {"account": f"{i:012d}", "arrears": f"{rng.randint(3000, 30000) / 100:.2f}",
                 "tier_kwh": "0"}
                for i in range(1, postpaid + 1)
                if i % 5 == 0
            ],
        )  # fmt: skip
        today = timezone.localdate(timezone=tenant.zone)
        bills: list[tuple[int, int, str, Decimal]] = []  # (bill id, account, period, total)
        for i in [*range(1, postpaid + 1), hot]:
            first = 0 if i == hot or i % 5 < 2 else 2  # 40 % owe the two overdue bills too
            periods = [*PERIODS[first:], *([] if i != hot else ["2026-11"] * 8)]
            for period in periods:
                amount = Decimal(rng.randint(6000, 30000)) / 100
                bills.append((len(bills) + 1, i, period, amount))
        with transaction.atomic(), connection.cursor() as cursor:
            _copy(
                cursor,
                "billing_bill",
                "id, tenant_id, site_id, account_id, period, kind, state, number, supplementary, "
                "utility, starts_on, ends_on, total, tax_total, consumption, opening, closing, "
                "annual_quantities, posting, checks, reason, buyer_name, buyer_tax_id, "
                "tax_code, payment_reference, created_by_kind, created_by_label, "
                "approved_by_label, created_at, tariff_versions",
                (
                    f"{pk}\t{tenant.pk}\t{site.pk}\t{account}\t{period}\tbill\tdraft\t"
                    f"2026{pk:08d}\tf\telectricity\t{period}-01\t{period}-28\t{amount}\t"
                    f"{_tax(amount)}\t{{}}\t[]\t[]\t{{}}\t"
                    f'{{"energy": ["{amount - _tax(amount)}", "{_tax(amount)}"]}}\t\t\t'
                    f"用户{account}\t\t1100101000000000000\t2026{pk:08d}0\tsystem\tbench\t\t"
                    f"{NOW}\t[]\n"
                    for pk, account, period, amount in bills
                ),
            )
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('billing_bill', 'id'), {len(bills)})"
            )
        for start in range(0, len(bills), 1000):
            with transaction.atomic():
                chunk = list(Bill.objects.filter(pk__gt=start, pk__lte=start + 1000).order_by("pk"))
                issue_bills(system, tenant, settings, chunk)
        with transaction.atomic(), connection.cursor() as cursor:
            for period, days in zip(PERIODS, DUE_IN_DAYS, strict=True):
                due = today + timedelta(days=days)
                cursor.execute(
                    "UPDATE billing_bill SET due_date = %s, issue_date = %s "
                    "WHERE tenant_id = %s AND period = %s",
                    [due, due - timedelta(days=15), tenant.pk, period],
                )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
    return World(tenant.pk, list(range(1, postpaid + 1)), list(range(postpaid + 1, hot)), hot)


def _tax(amount: Decimal) -> Decimal:
    return (amount - amount / Decimal("1.13")).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Job:
    """One writer's payments: (account id, amount) each, its actor, channel and key prefix."""

    actor: Principal
    channel: str
    prefix: str
    payments: list[tuple[int, Decimal]]


def _writer(job: Job, tenant_id: int, start: Any, results: Any) -> None:
    """A writer process: its own connection, then the payments one after another."""
    from django.db import connection, transaction

    from collection.services.payments import post_payment
    from customers.models import Account
    from tenancy.context import use_tenant
    from tenancy.models import Tenant

    connection.close()  # the parent's socket is not this process's: open our own
    tenant = Tenant.objects.get(pk=tenant_id)
    statements = 0
    held: list[float] = []
    failures: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    def clock(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if "tenancy_sequence" in sql:
            taken = time.perf_counter()
            transaction.on_commit(lambda: held.append(time.perf_counter() - taken))
        return result

    with use_tenant(tenant):
        accounts = {
            account.pk: account
            for account in Account.objects.filter(pk__in={pk for pk, _ in job.payments})
        }
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        start.wait()
        backend_before = _cpu_seconds(backend)
        cpu_before, began = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(count):
            for index, (account_id, amount) in enumerate(job.payments):
                try:
                    if index % LOCK_SAMPLE_EVERY == 0:
                        with connection.execute_wrapper(clock):
                            _post(post_payment, job, accounts[account_id], amount, index)
                    else:
                        _post(post_payment, job, accounts[account_id], amount, index)
                except Exception as exc:  # reported, and the case fails
                    failures.append(f"{type(exc).__name__}: {exc}")
        ended, cpu = time.perf_counter(), time.process_time() - cpu_before
        backend_cpu = _cpu_seconds(backend) - backend_before
    results.put(
        {
            "began": began,
            "ended": ended,
            "payments": len(job.payments) - len(failures),
            "python_cpu": cpu,
            "postgres_cpu": backend_cpu,
            "statements": statements,
            "held": held,
            "failures": failures[:5],
        }
    )


def _post(post_payment: Any, job: Job, account: Any, amount: Decimal, index: int) -> None:
    post_payment(
        job.actor, account=account, channel=job.channel, amount=amount,
        idempotency_key=f"{job.prefix}-{index}", external_reference=f"{index:06d}",
    )  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def run_case(name: str, jobs: list[Job], world: World) -> dict[str, Any]:
    """Fork one writer per job, release them together, then check what they wrote."""
    from django.db import connection, connections

    with connection.cursor() as cursor:
        # What autovacuum does in production (it is off on this machine's server): statistics
        # of the tables the payments wrote, so the planner reads them by their keys.
        cursor.execute(f"ANALYZE {', '.join(WRITTEN)}")
    connections.close_all()
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(len(jobs)), context.Queue()
    writers = [
        context.Process(target=_writer, args=(job, world.tenant_id, start, results)) for job in jobs
    ]
    for writer in writers:
        writer.start()
    done = [results.get() for _ in writers]
    for writer in writers:
        writer.join()
    payments = sum(part["payments"] for part in done)
    seconds = max(part["ended"] for part in done) - min(part["began"] for part in done)
    held = sorted(sample for part in done for sample in part["held"])
    figures: dict[str, Any] = {
        "writers": len(jobs),
        "payments": payments,
        "seconds": round(seconds, 2),
        "payments_per_s": round(payments / seconds, 1),
        "python_cpu_ms_per_payment": round(
            1000 * sum(part["python_cpu"] for part in done) / payments, 2
        ),
        "postgres_cpu_ms_per_payment": round(
            1000 * sum(part["postgres_cpu"] for part in done) / payments, 2
        ),
        "statements_per_payment": round(sum(part["statements"] for part in done) / payments, 1),
        "receipt_lock_held_ms": {
            "samples": len(held),
            "median": round(1000 * statistics.median(held), 3),
            "p99": round(1000 * held[int(0.99 * (len(held) - 1))], 3),
            "max": round(1000 * held[-1], 3),
        },
        "failures": sum(len(job.payments) for job in jobs) - payments,
        "failure_examples": [text for part in done for text in part["failures"]][:5],
    }
    figures.update(check(world, sum(len(job.payments) for job in jobs)))
    print(f"{name}: {json.dumps(figures, ensure_ascii=False)}", flush=True)
    return figures


_posted_before = 0


def check(world: World, submitted: int) -> dict[str, int]:
    """What must hold after a case (see the module's overview)."""
    global _posted_before
    from django.db import connection

    from ledger.checks import check_ledger
    from tenancy.models import Tenant

    tenant = Tenant.objects.get(pk=world.tenant_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT number), coalesce(min(number), 1), "
            "coalesce(max(number), 0) FROM collection_receipt WHERE tenant_id = %s",
            [tenant.pk],
        )
        receipts, distinct, _first, last = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM collection_payment WHERE tenant_id = %s", [tenant.pk])
        [payments] = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM collection_payment p JOIN (SELECT payment_id, "
            "sum(late_fee + principal) AS allocated FROM collection_paymentallocation "
            "WHERE tenant_id = %s GROUP BY payment_id) a ON a.payment_id = p.id "
            "WHERE a.allocated > p.amount + p.credit_used",
            [tenant.pk],
        )
        [over_payment] = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM billing_bill b JOIN (SELECT bill_id, sum(principal) AS paid "
            "FROM collection_paymentallocation WHERE tenant_id = %s AND bill_id IS NOT NULL "
            "GROUP BY bill_id) a ON a.bill_id = b.id WHERE a.paid > b.total",
            [tenant.pk],
        )
        [over_bill] = cursor.fetchone()
    lost = _posted_before + submitted - payments
    _posted_before = payments
    return {
        "ledger_problems": len(check_ledger(tenant)),
        "receipt_gaps": last - distinct,  # numbered 1…last, each once
        "receipt_duplicates": receipts - distinct,
        "payments_without_receipt": payments - receipts,
        "payments_lost": lost,
        "allocations_above_amount": over_payment + over_bill,
    }


def _cashiers(tenant_id: int, count: int) -> list[Principal]:
    """Staff cashiers, each with an open shift."""
    from collection.services import shifts
    from tenancy import services
    from tenancy.models import Site, Tenant
    from tenancy.principal import Principal
    from tenancy.roles import Role

    tenant = Tenant.objects.get(pk=tenant_id)
    system = Principal.system(tenant, "bench seed")
    site = Site.objects.get(tenant=tenant)
    cashiers = []
    for index in range(count):
        user = services.create_staff(
            system, username=f"bench-cashier-{index}", password="Bench@2026!bars",
            grants=[services.GrantSpec(Role.CASHIER, site)],
        )  # fmt: skip
        cashier = Principal.for_user(user)
        shifts.open_shift(cashier, site=site, float_amount=Decimal("0.00"))
        cashiers.append(cashier)
    return cashiers


def _jobs(
    actor_of: Any, channel: str, case: str, writers: int, count: int, accounts: list[int],
    rng: random.Random, amounts: tuple[int, int] = (2000, 15000),
) -> list[Job]:  # fmt: skip
    per = count // writers
    return [
        Job(
            actor_of(index),
            channel,
            f"{case}-{index}",
            [
                (rng.choice(accounts), Decimal(rng.randint(*amounts)) / 100)
                for _payment in range(per)
            ],
        )
        for index in range(writers)
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from collection.services.payments import post_payment
    from customers.models import Account
    from tenancy import services
    from tenancy.context import use_tenant
    from tenancy.models import Tenant
    from tenancy.principal import Principal
    from tenancy.roles import Role

    seeding = time.perf_counter()
    world = seed(args.accounts, args.accounts // 5)
    print(f"seeded in {time.perf_counter() - seeding:.1f} s", flush=True)
    tenant = Tenant.objects.get(pk=world.tenant_id)
    with use_tenant(tenant):
        client, _token = services.issue_api_client(
            Principal.system(tenant, "bench seed"), name="ICBC 代收",
            grants=[services.GrantSpec(role=Role.CASHIER)],
        )  # fmt: skip
        bank = Principal.for_api_client(client, grants=((Role.CASHIER, None),))
        # Warm up the parent (imports, translations, the clearing account) before forking, and
        # give the tables a history: a top-up of every prepaid account (not timed).
        for index, account in enumerate(Account.objects.filter(pk__in=world.prepaid)):
            post_payment(
                bank, account=account, channel="bank_collection", amount=Decimal("10.00"),
                idempotency_key=f"warm-up-{index}",
            )  # fmt: skip
        cashiers = _cashiers(world.tenant_id, 8)
    global _posted_before
    _posted_before = len(world.prepaid)
    rng = random.Random(2026)
    mixed = [*world.postpaid, *world.postpaid, *world.postpaid, *world.postpaid, *world.prepaid]

    def bank_of(_index: int) -> Principal:
        return bank

    cases: dict[str, Any] = {}
    with use_tenant(tenant):
        cases["one_writer"] = run_case(
            "one_writer",
            _jobs(bank_of, "bank_collection", "w1", 1, args.payments // 4, mixed, rng),
            world,
        )  # fmt: skip
        cases["eight_writers"] = run_case(
            "eight_writers", _jobs(bank_of, "bank_collection", "w8", 8, args.payments, mixed, rng),
            world,
        )  # fmt: skip
        cases["one_account"] = run_case(
            "one_account",
            _jobs(bank_of, "bank_collection", "hot", 50, 500, [world.hot], rng, (500, 3000)),
            world,
        )
        cases["counter_cash"] = run_case(
            "counter_cash",
            _jobs(cashiers.__getitem__, "counter_cash", "cash", 8, args.payments // 2, mixed, rng),
            world,
        )
    return cases


def floor(writers: int, payments: int, accounts: int) -> dict[str, Any]:
    dsn = recreate_database(FLOOR_DB)
    try:
        done = subprocess.run(
            [sys.executable, str(BASELINES / "payment_baseline.py"), "--writers", str(writers),
             "--payments", str(payments), "--accounts", str(accounts), "--dsn", dsn],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        drop_database(FLOOR_DB)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000, help="postpaid accounts")
    parser.add_argument("--payments", type=int, default=4000, help="payments of the 8 writers")
    parser.add_argument("--skip-floor", action="store_true", help="(while profiling)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(run(args), ensure_ascii=False))
        return
    # As deployed: production settings (no query log: DEBUG keeps every query).
    env = production_env(recreate_database(BENCH_DB))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    try:
        output = subprocess.run(
            [sys.executable, "-m", "bench.payments", "--inner", "--accounts", str(args.accounts),
             "--payments", str(args.payments)],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()  # fmt: skip
    finally:
        drop_database(BENCH_DB)
    for line in output[:-1]:
        print(line, flush=True)
    cases = json.loads(output[-1])
    floors: dict[str, Any] = {}
    if not args.skip_floor:
        floors = {
            "one_writer": floor(1, args.payments // 4, args.accounts),
            "eight_writers": floor(8, args.payments, args.accounts),
            "one_account": floor(50, 500, 1),
        }
        for name, figures in floors.items():
            cases[name]["floor_payments_per_s"] = figures["payments_per_s"]
            cases[name]["ratio_to_floor"] = round(
                cases[name]["payments_per_s"] / figures["payments_per_s"], 3
            )
            print(f"floor {name}: {json.dumps(figures)}", flush=True)
    main_case = cases["eight_writers"]
    checked = [case for case in cases.values() if "skipped" not in case]
    result = {
        "payments_per_s": main_case["payments_per_s"],
        "floor_payments_per_s": main_case.get("floor_payments_per_s"),
        "ratio_to_floor": main_case.get("ratio_to_floor"),
        "writers": main_case["writers"],
        "accounts": args.accounts,
        "receipt_gaps": sum(case["receipt_gaps"] for case in checked),
        "receipt_duplicates": sum(case["receipt_duplicates"] for case in checked),
        "ledger_problems": sum(case["ledger_problems"] for case in checked),
        "payments_lost": sum(case["payments_lost"] for case in checked),
        "allocations_above_amount": sum(case["allocations_above_amount"] for case in checked),
        "python_cpu_ms_per_payment": main_case["python_cpu_ms_per_payment"],
        "postgres_cpu_ms_per_payment": main_case["postgres_cpu_ms_per_payment"],
        "postgres_cpu_source": "/proc/<pid>/stat of the writers' backends (pg_backend_pid())",
        "statements_per_payment": main_case["statements_per_payment"],
        "receipt_lock_held_ms": main_case["receipt_lock_held_ms"],
        "cases": cases,
        "floors": floors,
    }
    for name, case in cases.items():
        if "skipped" in case:
            print(f"{name}: {case['skipped']}")
            continue
        print(
            f"{name}: {case['payments']:,} payments by {case['writers']} writers in "
            f"{case['seconds']} s = {case['payments_per_s']:,}/s (floor "
            f"{case.get('floor_payments_per_s', '-')}/s, ratio {case.get('ratio_to_floor', '-')}); "
            f"CPU per payment: Python {case['python_cpu_ms_per_payment']} ms, PostgreSQL "
            f"{case['postgres_cpu_ms_per_payment']} ms; {case['statements_per_payment']} "
            f"statements; receipt lock held {case['receipt_lock_held_ms']} ms; ledger problems "
            f"{case['ledger_problems']}, receipt gaps {case['receipt_gaps']}, lost "
            f"{case['payments_lost']}",
            flush=True,
        )
    write_result("payments", result)


if __name__ == "__main__":
    main()
