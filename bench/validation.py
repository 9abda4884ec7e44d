"""Validation benchmark: a million readings checked on PostgreSQL, with planted faults.

10,000 meters × 100 hourly readings (COPY), and on a known share of meters one fault each at a
known reading: a counter that jumps back, a jump up (spike), no consumption while power flows,
TOU registers that do not add up, a repeated answer time, an answer time that goes back, and
a slot in the future. Then ``validate_readings`` checks everything, including reading the
history each rule needs and storing the checks and the queue: readings/s, peak memory, and the
planted faults found (one missed is a bug, not a figure).

    python -m bench.validation [--readings 1000000] [--meters 10000]
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
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from bench.common import ROOT, drop_database, recreate_database, require_free_disk, write_result

BENCH_DB = "bars_bench_validation"
FAULTS = [
    "backwards",
    "spike",
    "zero_with_power",
    "tou_mismatch",
    "duplicate",
    "out_of_order",
    "future",
]
FAULT_SHARE = 0.05  # of meters carry one planted fault each
START = datetime(2026, 1, 1, tzinfo=UTC)


def plant(meters: int, per_meter: int, seed: int = 7) -> dict[tuple[int, int], str]:
    """Which (meter index, reading index) carries which fault."""
    rng = random.Random(seed)
    faulty = rng.sample(range(meters), int(meters * FAULT_SHARE))
    planted = {}
    for position, meter in enumerate(faulty):
        fault = FAULTS[position % len(FAULTS)]
        index = per_meter - 1 if fault == "future" else rng.randrange(12, per_meter - 2)
        planted[(meter, index)] = fault
    return planted


class CopyRows(io.TextIOBase):
    """The readings as COPY text, made as COPY reads them (a million rows never sit in memory):
    about 1 kWh an hour split 0.1/0.3/0.4/0.2 over the TOU registers, with the planted faults."""

    def __init__(self, tenant: int, meter_ids: list[int], per_meter: int, planted: dict) -> None:
        self.lines = self._lines(tenant, meter_ids, per_meter, planted)
        self.buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:  # type: ignore[override]
        while size < 0 or len(self.buffer) < size:
            chunk = "".join(line for _n, line in zip(range(1000), self.lines, strict=False))
            if not chunk:
                break
            self.buffer += chunk
        if size < 0:
            size = len(self.buffer)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        return next(self.lines, "")

    @staticmethod
    def _lines(tenant: int, meter_ids: list[int], per_meter: int, planted: dict) -> Iterator[str]:
        rng = random.Random(11)
        now = datetime.now(UTC)
        for meter_index, meter_id in enumerate(meter_ids):
            total = rng.randrange(10_000, 5_000_000)  # hundredths
            shift = 0
            for index in range(per_meter):
                fault = planted.get((meter_index, index))
                used = 0 if fault == "zero_with_power" else 80 + rng.randrange(40)
                total += used
                shift += {"backwards": -5000, "spike": 5000}.get(fault, 0)  # type: ignore[arg-type]
                value = total + shift
                parts = [value // 10, value * 3 // 10, value * 4 // 10]
                parts.append(value - sum(parts) + (100 if fault == "tou_mismatch" else 0))
                taken = START + timedelta(hours=index)
                read = taken + timedelta(seconds=5)
                if fault == "duplicate":
                    read = START + timedelta(hours=index - 1, seconds=5)
                if fault == "out_of_order":
                    read = START + timedelta(hours=index - 2)
                if fault == "future":
                    taken = read = now + timedelta(hours=2)
                power = "0.500" if fault == "zero_with_power" else "0.900"
                yield (
                    f"{tenant}\t{meter_id}\t{taken.isoformat()}\t{read.isoformat()}\tpolled\t"
                    f"{value / 100:.2f}\t{parts[0] / 100:.2f}\t{parts[1] / 100:.2f}\t"
                    f"{parts[2] / 100:.2f}\t{parts[3] / 100:.2f}\t220.0\t4.1\t{power}\t0.950\t"
                    f"closed\t{{}}\t{now.isoformat()}\n"
                )


def run(args: argparse.Namespace) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    from metering.models import Meter
    from tenancy.context import use_tenant
    from tenancy.models import Site, Tenant
    from verification.models import ReadingCheck, VerificationItem
    from verification.rules import validate_readings

    per_meter = args.readings // args.meters
    tenant = Tenant.objects.create(name="Validation bench", slug="validation-bench")
    planted = plant(args.meters, per_meter)
    with use_tenant(tenant):
        site = Site.objects.create(tenant=tenant, code="V1", name="bench")
        meters = Meter.objects.bulk_create(
            Meter(
                tenant=tenant,
                site=site,
                serial_number=str(1_000_000 + index),
                profile="DDSY1352",
                utility="electricity",
                installed_on=START.date() - timedelta(days=1),
            )
            for index in range(args.meters)
        )
        meter_ids = [meter.pk for meter in meters]
        seeding = time.perf_counter()
        seeded_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with connection.cursor() as cursor:
            cursor.copy_expert(
                "COPY metering_reading (tenant_id, meter_id, taken_at, read_at, source, total, "
                "tou_spike, tou_peak, tou_flat, tou_valley, voltage, current, power, "
                "power_factor, relay_state, extra, created_at) FROM STDIN",
                CopyRows(tenant.pk, meter_ids, per_meter, planted),
            )
            cursor.execute("ANALYZE metering_reading")
        print(
            f"seeded {args.readings:,} readings in {time.perf_counter() - seeding:.1f} s",
            flush=True,
        )
        started = time.perf_counter()
        summary = validate_readings(tenant)
        elapsed = time.perf_counter() - started
        found: Counter = Counter()
        index_of = {meter_id: index for index, meter_id in enumerate(meter_ids)}
        start_of = START
        for meter_id, taken_at, rules in ReadingCheck.objects.filter(status="suspect").values_list(
            "meter_id", "taken_at", "rules"
        ):
            position = round((taken_at - start_of).total_seconds() / 3600)
            fault = planted.get((index_of[meter_id], position))
            if fault is None and taken_at > datetime.now(UTC):
                fault = planted.get((index_of[meter_id], per_meter - 1))
            if fault is not None and fault in rules.split(","):
                found[fault] += 1
        queued = VerificationItem.objects.count()
    planted_counts = Counter(planted.values())
    return {
        "readings": summary.checked,
        "seconds": round(elapsed, 2),
        "readings_per_s": round(summary.checked / elapsed),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_seeding_mb": round(seeded_rss, 1),
        "planted": dict(planted_counts),
        "found": dict(found),
        "missed": {
            k: planted_counts[k] - found[k] for k in planted_counts if found[k] < planted_counts[k]
        },
        "suspect": summary.suspect,
        "false_positives": summary.suspect - sum(found.values()),
        "queued": queued,
        "by_rule": dict(summary.by_rule),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(run(args)))
        return
    require_free_disk(3)
    env = {**os.environ, "DATABASE_URL": recreate_database(BENCH_DB), "BARS_LOG_LEVEL": "ERROR"}
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        output = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.validation",
                    "--inner",
                    "--readings",
                    str(args.readings),
                    "--meters",
                    str(args.meters),
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()
        )
    finally:
        drop_database(BENCH_DB)
    for line in output[:-1]:
        print(line)
    figures = json.loads(output[-1])
    print(
        f"validated {figures['readings']:,} readings in {figures['seconds']} s: "
        f"{figures['readings_per_s']:,}/s, peak {figures['peak_rss_mb']} MB; planted "
        f"{sum(figures['planted'].values())}, found {sum(figures['found'].values())}, "
        f"false positives {figures['false_positives']}",
        flush=True,
    )
    write_result("validation", figures)


if __name__ == "__main__":
    main()
