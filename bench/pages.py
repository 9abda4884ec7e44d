"""Console pages benchmark: server time of the staff console's main pages on 100,000 accounts.

The data. A fresh database seeded by ``bench.billing``'s own run (imported, not copied): one
tenant, one site of N postpaid accounts with their customers, premises, meters, the two
boundary readings of October 2026, go-live openings, the 2026-09 bills, three tariffs; the
readings validated (the suspect ones wait in the verification queue), October's period
consumption computed and its bill run opened, priced, approved and issued (N bills less the
held-back and flagged ones, with their lines and ledger entries; audit events from those
services). Then, for the console: a tenant administrator holding every site; 100 gateways of
32 meters each (3,200 of the N meters; the others have no gateway) with a day of poll rounds
(96 slots of 15 minutes); a reading of every meter for the last finished slot at seeding
time; 20 corrections proposed for queue items; an inspection sample of 20 readings and 20
bills. ``VACUUM (ANALYZE)`` at the end, as autovacuum would have by the time staff look, and
the dashboards' summaries computed once, as their job (every five minutes) would have.

How it differs from production. One site, one tenant; the readings are the two October
boundaries and one recent slot, not a reading every 15 minutes (about 3,000 a meter a month),
so the meter and reading pages read far fewer rows than they would; only 3,200 meters sit on
gateways; one payment (taken at the counter for the account the account pages show, so the
payment and receipt pages have one to show), one cashier's shift (open), one deposit with a
refund of it asked for, one account closed, one released batch of 10,000 recharge cards;
no prepaid accounts, transformer areas (the
line-loss page is empty) or meter commands; audit events are those of the seeding services
(about 1,000), not months of staff work. The slot of the plain reading-completeness page is
the clock's (its readings are usually not seeded by the time it is measured); ``reading
completeness (seeded slot)`` asks for the slot that has one reading per meter.

What runs. As ``bench.api``: gunicorn with ``gunicorn.conf.py`` and ``--workers`` sync workers
(4), static files collected, production settings (``DJANGO_DEBUG=0``, the
Content-Security-Policy and the other security headers, the cached template loader), the
Redis cache (database 8), PostgreSQL. The tenant requires a second factor (production's
default): the bench administrator is enrolled with a TOTP device (django-otp) and signs in
once through ``/login/`` and ``/two-factor/`` with a code computed from its key, like a
person with an authenticator app; the session cookie is then sent with every request.

What is timed. One client, one request at a time. Each request opens a TCP connection
(sync gunicorn workers close it after each response, as behind a proxy), then is timed from
sending the request to reading the last byte of the response (the connect is not in it, as
in wrk). Per page: ``--warmups`` untimed requests (8: the kernel hands connections to the 4
workers in no fixed order, and each worker renders a page's templates once before caching
them), then ``--requests`` timed ones (30). p50 and p99 are interpolated between the sorted
times (``statistics.quantiles``, inclusive); with 30 requests p99 lies between the two
slowest. No ``Accept-Encoding`` is sent (no compression). A page counts only if every answer is
200. The target (issue: p99 ≤ 150 ms for every list, detail and dashboard page) is reported per
page as data.

The floor. In the same run, ../shared/baselines/api_floor (unmodified; seeded and started as
``bench.api`` does, same gunicorn configuration and worker count, its own database of N rows)
answers ``GET /api/accounts/NUMBER/`` for random numbers with the same client and the same
counts: the plainest request this machine serves. Each page's p50 and p99 are also given as a
multiple of the floor's.

Keyset pages: a list's "later page" is reached by following its ``rel="next"`` link
``NEXT_HOPS`` times from the filtered or plain list, then timed like any page.

    python -m bench.pages [--accounts 100000] [--requests 30] [--warmups 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import random
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.common import (
    ROOT,
    drop_database,
    production_env,
    recreate_database,
    require_free_disk,
    write_result,
)

BENCH_DB = "bars_bench_pages"
FLOOR_DB = "bars_baseline"
REDIS_URL = "redis://127.0.0.1:6379/8"
TARGET_P99_MS = 150.0
NEXT_HOPS = 3
GATEWAYS, METERS_PER_GATEWAY, ROUNDS = 100, 32, 96
USERNAME = "bench-admin"


# --- seeding (runs in its own process, with production settings) ------------------------------


def seed_console(accounts: int) -> dict[str, Any]:
    """After ``bench.billing.run``: what the console pages need beyond the bill run (see the
    module's docstring), and the pages to time with their paths."""
    import secrets
    from datetime import timedelta
    from decimal import Decimal

    from django.db import connection
    from django.urls import reverse
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from billing.models import Bill, BillRun, FlaggedBill, Tariff
    from collection.models import Receipt, VoucherCard
    from collection.services.closing import close_account
    from collection.services.deposits import take_deposit
    from collection.services.payments import post_payment
    from collection.services.refunds import request_refund
    from collection.services.shifts import open_shift
    from collection.services.vouchers import download_pins, generate_batch, release_batch
    from console.summaries import refresh_summaries
    from customers.models import Account
    from inspection.services import draw_sample
    from metering import reports
    from metering import services as metering_services
    from metering.models import Meter, PollRound, Reading
    from tenancy import services as tenancy_services
    from tenancy.audit import AuditAction
    from tenancy.context import use_tenant
    from tenancy.models import Site, Tenant
    from tenancy.principal import Principal
    from tenancy.roles import Role
    from verification.effective import REGISTERS
    from verification.models import ItemState, PeriodConsumption, VerificationItem
    from verification.services import edit_reading

    tenant = Tenant.objects.get(slug="billing-bench")
    with use_tenant(tenant):
        site = Site.objects.get(code="B1")
        system = Principal.system(tenant, "bench seed")
        password = secrets.token_urlsafe(18)
        admin = tenancy_services.create_staff(
            system,
            username=USERNAME,
            password=password,
            grants=[tenancy_services.GrantSpec(role=Role.TENANT_ADMIN)],
            display_name="Bench administrator",
        )
        device = TOTPDevice.objects.create(user=admin, name="bench", confirmed=True)
        actor = Principal.for_user(admin)

        slot = reports.last_finished_slot(tenant)
        interval = timedelta(minutes=tenant.reading_interval_minutes)
        rounds = []
        for number in range(GATEWAYS):
            gateway = metering_services.create_gateway(
                system, site=site, name=f"B1-GW{number:03d}", host=f"10.1.{number}.1", port=502
            )
            first = number * METERS_PER_GATEWAY + 1
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE metering_meter SET gateway_id = %s, unit_id = id - %s + 1 "
                    "WHERE tenant_id = %s AND id BETWEEN %s AND %s",
                    [gateway.pk, first, tenant.pk, first, first + METERS_PER_GATEWAY - 1],
                )
            for back in range(ROUNDS):
                started = slot - back * interval + timedelta(seconds=2)
                read = METERS_PER_GATEWAY - (1 if (number + back) % 17 == 0 else 0)
                rounds.append(
                    PollRound(
                        tenant=tenant,
                        gateway=gateway,
                        site=site,
                        slot=slot - back * interval,
                        started_at=started,
                        finished_at=started + timedelta(seconds=9),
                        meters_total=METERS_PER_GATEWAY,
                        meters_read=read,
                        requests=METERS_PER_GATEWAY + 2,
                        failed_requests=METERS_PER_GATEWAY - read,
                        response_ms_total=read * 180.0,
                    )
                )
        PollRound.objects.bulk_create(rounds, batch_size=2000)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO metering_reading (tenant_id, meter_id, taken_at, read_at, source, "
                "total, tou_spike, tou_peak, tou_flat, tou_valley, voltage, current, power, "
                "power_factor, relay_state, extra, created_at) "
                "SELECT tenant_id, id, %s, %s, 'polled', 20000 + id %% 5000, 2000, 6000, 8000, "
                "4000 + id %% 5000, 220.0, 4.1, 0.9, 0.95, 'closed', '{}', %s "
                "FROM metering_meter WHERE tenant_id = %s",
                [slot, slot + timedelta(seconds=5), timezone.now(), tenant.pk],
            )

        waiting = VerificationItem.objects.filter(state=ItemState.OPEN)
        items = list(  # 20, and some left open at small sizes
            waiting.select_related("reading__meter").order_by("id")[: min(20, waiting.count() // 2)]
        )
        for item in items:
            reading = item.reading
            values = {name: getattr(reading, name) for name in REGISTERS}
            values["total"] = (values["total"] or Decimal(0)) + 10
            edit_reading(actor, item, values, "bench: register misread")
        open_item = VerificationItem.objects.filter(state=ItemState.OPEN).order_by("id").first()
        sample = draw_sample(actor, site, "2026-10", readings=20, bills=20, seed=1)

        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
        refresh_summaries()  # the dashboards' job (every five minutes in production)

        run = BillRun.objects.filter(period="2026-10").get()
        bill = Bill.objects.filter(run=run).order_by("id").first()
        account = Account.objects.select_related("customer").get(pk=accounts // 2)
        meter = Meter.objects.get(pk=1)
        held = PeriodConsumption.objects.filter(period="2026-10", status="held_back").first()
        assert bill is not None and open_item is not None and held is not None
        assert FlaggedBill.objects.exists()
        tariff = Tariff.objects.order_by("id").first()
        assert tariff is not None
        cashier = tenancy_services.create_staff(
            system,
            username="bench-cashier",
            password=secrets.token_urlsafe(18),
            grants=[tenancy_services.GrantSpec(role=Role.CASHIER)],
            display_name="Bench cashier",
        )
        # A counter payment is taken in the cashier's open shift, at the account's site.
        shift = open_shift(
            Principal.for_user(cashier), site=account.site, float_amount=Decimal("0.00")
        )
        payment = post_payment(
            Principal.for_user(cashier),
            account=account,
            channel="counter_cash",
            amount=Decimal("100.00"),
            idempotency_key="bench-pages-1",
        ).payment
        receipt = Receipt.objects.get(payment=payment)
        # The other collect pages, one of each: a deposit taken in the shift, a refund of it
        # asked for, a batch of 10,000 recharge cards released, an account closed with its
        # final reading (the next account's: the reading is the seeded slot's plus 10 kWh).
        take_deposit(
            Principal.for_user(cashier), account=account, channel="counter_cash",
            amount=Decimal("200.00"), idempotency_key="bench-pages-deposit",
        )  # fmt: skip
        refund = request_refund(
            actor, account=account, from_deposit=Decimal("200.00"), channel="cash",
            reason="bench: deposit returned",
        )  # fmt: skip
        batch = generate_batch(
            actor, face_value=Decimal("50.00"), count=10_000,
            expires_on=timezone.localdate() + timedelta(days=365),
        )  # fmt: skip
        download_pins(actor, batch)
        release_batch(actor, batch)
        card = VoucherCard.objects.filter(batch=batch).order_by("id").first()
        assert card is not None
        closed = Account.objects.get(pk=account.pk + 1)
        last = Reading.objects.filter(meter__account=closed).order_by("-taken_at").first()
        assert last is not None and last.total is not None
        closing = close_account(
            actor, closed, reason="bench: moved out", taken_at=timezone.now(),
            values={"total": last.total + 10},
        )  # fmt: skip
        local_slot = timezone.localtime(slot, tenant.zone).strftime("%Y-%m-%dT%H:%M")

    def url(name: str, query: dict[str, Any] | None = None, **kwargs: Any) -> str:
        path = reverse(f"console:{name}", kwargs=kwargs or None)
        return f"{path}?{urlencode(query)}" if query else path

    pages: list[dict[str, Any]] = []

    def add(label: str, path: str, later: bool = False) -> None:
        pages.append({"page": label, "path": path})
        if later:
            pages.append({"page": f"{label}, later page", "path": path, "next_hops": NEXT_HOPS})

    add("dashboard", url("home"))
    add("meters", url("meters"), later=True)
    add("meters, by serial prefix", url("meters", {"serial": "90012"}))
    add("meter", url("meter", meter_id=meter.pk))
    add("gateways", url("gateways"), later=True)
    add("gateways, by site", url("gateways", {"site": site.pk}))
    add("gateway", url("gateway", gateway_id=gateway.pk))
    add("reading completeness", url("reading-completeness"))
    add("reading completeness (seeded slot)", url("reading-completeness", {"slot": local_slot}))
    add("verification queue", url("verification-queue"), later=True)
    add("verification queue, open", url("verification-queue", {"state": "open"}))
    add("queue item", url("verification-item", item_id=open_item.pk))
    add("corrections", url("corrections"))
    add("corrections, proposed", url("corrections", {"state": "proposed"}))
    add("periods", url("periods"))
    add("period 2026-10 of the site", url("periods", {"site": site.pk, "period": "2026-10"}))
    add("period", url("period", period_id=held.pk))
    add("line losses", url("line-losses"))
    add("tariffs", url("tariffs"))
    add("tariffs, electricity", url("tariffs", {"utility": "electricity"}))
    add("tariff", url("tariff", tariff_id=tariff.pk))
    add("bill runs", url("bill-runs"))
    add("bill runs, 2026-10", url("bill-runs", {"period": "2026-10"}))
    add("bill run (issued, 100k bills)", url("bill-run", run_id=run.pk))
    add("bills", url("bills"), later=True)
    add("bills, period 2026-10", url("bills", {"period": "2026-10"}), later=True)
    add("bills, by number", url("bills", {"number": bill.number}))
    add("bill", url("bill", bill_id=bill.pk))
    add("flagged bills", url("flagged-bills"), later=True)
    add("customer search", url("customer-search"))
    add("customer search, by account number", url("customer-search", {"number": account.number}))
    add("customer search, by name", url("customer-search", {"name": account.customer.name}))
    add("account", url("account", account_id=account.pk))
    add("customer", url("customer", customer_id=account.customer_id))
    add("counter", url("counter"))
    add("counter, an account's panel", url("counter-account", account_id=account.pk))
    add("payments", url("payments"))
    add("payments, by account", url("payments", {"account": account.number}))
    add("payment", url("payment", payment_id=payment.pk))
    add("receipt", url("receipt", receipt_id=receipt.pk))
    add("payment reversals", url("payment-reversals"))
    add("failed payment attempts", url("payment-attempts"))
    add("shifts", url("shifts"))
    add("shift", url("shift", shift_id=shift.pk))
    add("holiday cash approvals", url("cash-approvals"))
    add("cash hand-overs", url("cash-handovers"))
    add("deposits", url("deposits"))
    add("refunds", url("refunds"))
    add("refund", url("refund", refund_id=refund.pk))
    add("account closings", url("account-closings"))
    add("account closing", url("account-closing", closing_id=closing.pk))
    add("recharge card batches", url("voucher-batches"))
    add("recharge card batch (10,000 cards)", url("voucher-batch", batch_id=batch.pk))
    add("recharge cards", url("voucher-cards"), later=True)
    add("recharge card", url("voucher-card", card_id=card.pk))
    add("staff", url("staff"))
    add("audit trail", url("audit-events"), later=True)
    add("audit trail, bills issued", url("audit-events", {"action": AuditAction.BILLS_ISSUED}))
    add("inspection samples", url("inspection-samples"))
    add("inspection sample", url("inspection-sample", sample_id=sample.pk))
    add("inspection KPIs", url("inspection-kpis"))
    return {
        "username": USERNAME,
        "password": password,
        "totp_key": device.key,
        "require_second_factor": tenant.require_second_factor,
        "pages": pages,
    }


def seed_inner(accounts: int) -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from bench import billing

    began = time.perf_counter()
    figures = billing.run(
        argparse.Namespace(
            accounts=accounts, from_readings=accounts, workers=2, chunk=2000, query_profile=False
        )
    )
    billed = time.perf_counter() - began
    console = seed_console(accounts)
    console["bill_run"] = {
        key: figures[key] for key in ("bills_issued", "held_back", "flagged", "journal_lines")
    }
    console["billing_seconds"] = round(billed, 1)
    console["console_seed_seconds"] = round(time.perf_counter() - began - billed, 1)
    print(json.dumps(console, ensure_ascii=False), flush=True)


# --- the client ----------------------------------------------------------------------------------


def totp(key_hex: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238, as an authenticator app computes it (django-otp's defaults)."""
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(bytes.fromhex(key_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


class Client:
    """One request at a time, a new connection for each; cookies kept as a browser would."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes, float]:
        headers = {"X-Forwarded-Proto": "https", "Host": f"{self.host}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            origin = f"https://{self.host}:{self.port}"
            headers |= {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": origin,
                "Referer": origin + path,
            }
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        connection.connect()
        try:
            began = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
            elapsed = (time.perf_counter() - began) * 1000
        finally:
            connection.close()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        answer = {k.lower(): v for k, v in response.getheaders()}
        return response.status, answer, content, elapsed

    def get(self, path: str) -> tuple[int, bytes, float]:
        status, _headers, content, elapsed = self.request("GET", path)
        return status, content, elapsed

    def form_token(self, path: str) -> str:
        status, content, _ = self.get(path)
        found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', content)
        if status != 200 or found is None:
            raise SystemExit(f"no form at {path} ({status})")
        return found.group(1).decode()

    def sign_in(self, username: str, password: str, totp_key: str) -> None:
        """Password, then the second step with a code from the device's key."""
        token = self.form_token("/login/")
        status, headers, _, _ = self.request(
            "POST",
            "/login/",
            {"csrfmiddlewaretoken": token, "username": username, "password": password},
        )
        if status != 302:
            raise SystemExit(f"sign-in refused ({status})")
        token = self.form_token("/two-factor/")
        status, headers, _, _ = self.request(
            "POST", "/two-factor/", {"csrfmiddlewaretoken": token, "code": totp(totp_key)}
        )
        if status != 302 or "two-factor" in headers.get("location", ""):
            raise SystemExit(f"second factor refused ({status})")
        status, _, _ = self.get("/console/")
        if status != 200:
            raise SystemExit(f"the console answered {status} after signing in")


def later_page(client: Client, path: str, hops: int) -> str | None:
    """The path reached by following the list's ``rel="next"`` link ``hops`` times, or as
    many times as there is one; ``None`` when the first page is the only one."""
    for hop in range(hops):
        status, content, _ = client.get(path)
        found = re.search(rb'<a href="([^"]+)" rel="next"', content)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
        if found is None:
            return None if hop == 0 else path
        path = unescape(found.group(1).decode())
    return path


def measure(client: Client, paths: list[str], warmups: int, requests: int) -> dict[str, Any]:
    """Times of ``requests`` GETs after ``warmups`` untimed ones; the paths taken in turn."""
    statuses: dict[int, int] = {}
    times: list[float] = []
    size = 0
    for index in range(warmups + requests):
        status, content, elapsed = client.get(paths[index % len(paths)])
        if index >= warmups:
            times.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1
            size = max(size, len(content))
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(max(times), 1),
        "ok": statuses == {200: requests},
        "statuses": {str(k): v for k, v in statuses.items()},
        "bytes": size,
    }


# --- the run -----------------------------------------------------------------------------------


def seed(env: dict[str, str], accounts: int) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.pages", "--inner-seed", "--accounts", str(accounts)],
        cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(f"  {line}", flush=True)
    return json.loads(lines[-1])


def table(results: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    print(f"{'page':<42} {'p50':>7} {'p99':>7} {'max':>7} {'×floor p50':>10} {'×p99':>6}  target")
    for row in results:
        verdict = "met" if row["meets_target"] else "MISSED"
        if not row["ok"]:
            verdict += f" (answers {row['statuses']})"
        print(
            f"{row['page']:<42} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['max_ms']:>7.1f} "
            f"{row['p50_vs_floor']:>10.1f} {row['p99_vs_floor']:>6.1f}  {verdict}",
            flush=True,
        )
    print(
        f"{'floor: bare DRF lookup':<42} {floor['p50_ms']:>7.1f} {floor['p99_ms']:>7.1f} "
        f"{floor['max_ms']:>7.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmups", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--inner-seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_seed:
        seed_inner(args.accounts)
        return
    from bench.api import FLOOR, gunicorn, seed_floor

    require_free_disk(3)
    began = time.perf_counter()
    env = production_env(recreate_database(BENCH_DB), REDIS_URL)
    print(f"seeding {args.accounts:,} accounts and their bill run …", flush=True)
    seeded = seed(env, args.accounts)
    floor_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    seed_floor(floor_env, args.accounts)
    seed_seconds = time.perf_counter() - began
    print(f"seeded in {seed_seconds:.0f} s", flush=True)
    results: list[dict[str, Any]] = []
    measuring = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        env = {**env, "BARS_STATIC_ROOT": str(scratch / "static")}
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        with (
            gunicorn("config.wsgi:application", ROOT, env, args.workers, scratch) as platform,
            gunicorn("floor.wsgi:application", FLOOR, floor_env, args.workers, scratch) as floor,
        ):
            from bench.common import wait_until_answering

            wait_until_answering(f"{platform}/healthz", {"X-Forwarded-Proto": "https"})
            assert wait_until_answering(f"{floor}/api/accounts/0000000001/", {}) == 200
            client = Client(platform)
            client.sign_in(seeded["username"], seeded["password"], seeded["totp_key"])
            floor_client = Client(floor)
            numbers = random.Random(7).sample(range(1, args.accounts + 1), 200)
            floor_paths = [f"/api/accounts/{number:010d}/" for number in numbers]
            floor_figures = measure(floor_client, floor_paths, args.warmups, args.requests)
            print(
                f"floor lookup: p50 {floor_figures['p50_ms']} ms p99 {floor_figures['p99_ms']} ms",
                flush=True,
            )
            for page in seeded["pages"]:
                path = page["path"]
                if page.get("next_hops"):
                    later = later_page(client, path, page["next_hops"])
                    if later is None:
                        print(f"{page['page']}: no later page, not measured", flush=True)
                        continue
                    path = later
                figures = measure(client, [path], args.warmups, args.requests)
                row = {
                    "page": page["page"],
                    "path": path,
                    **figures,
                    "p50_vs_floor": round(figures["p50_ms"] / floor_figures["p50_ms"], 1),
                    "p99_vs_floor": round(figures["p99_ms"] / floor_figures["p99_ms"], 1),
                    "meets_target": figures["ok"] and figures["p99_ms"] <= TARGET_P99_MS,
                }
                results.append(row)
                print(
                    f"{row['page']:<42} p50 {row['p50_ms']:>7.1f} p99 {row['p99_ms']:>7.1f} "
                    f"max {row['max_ms']:>7.1f} ms  {row['statuses']}",
                    flush=True,
                )
            floor_figures_after = measure(floor_client, floor_paths, args.warmups, args.requests)
    run_seconds = time.perf_counter() - measuring
    if not args.keep:
        drop_database(BENCH_DB)
        drop_database(FLOOR_DB)
    table(results, floor_figures)
    missed = [row["page"] for row in results if not row["meets_target"]]
    print(f"target p99 ≤ {TARGET_P99_MS:.0f} ms: missed by {len(missed)} pages: {missed}")
    write_result(
        "pages",
        {
            "pages": results,
            "floor_lookup": floor_figures,
            "floor_lookup_after_pages": floor_figures_after,
            "target": {"p99_ms_at_most": TARGET_P99_MS, "missed": missed, "met": not missed},
            "accounts": args.accounts,
            "bill_run": seeded["bill_run"],
            "requests": args.requests,
            "warmups": args.warmups,
            "workers": args.workers,
            "second_factor": "TOTP (django-otp), signed in once"
            if seeded["require_second_factor"]
            else "not required by the tenant",
            "seed_seconds": round(seed_seconds),
            "billing_seed_seconds": seeded["billing_seconds"],
            "console_seed_seconds": seeded["console_seed_seconds"],
            "run_seconds": round(run_seconds),
            "notes": (
                "one request at a time, a new connection each (sync workers close it), timed "
                "from sending the request to the last byte; ratios are the page's p50 (p99) over "
                "the floor's p50 (p99) measured before the pages in the same run"
            ),
        },
    )


if __name__ == "__main__":
    main()
