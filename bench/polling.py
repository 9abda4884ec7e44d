"""Polling benchmark: G gateways × 32 meters at 9600 baud, every reading stored in PostgreSQL.

For each G the simulator (``manage.py simulate_gateways``) runs in a process of its own. The
bridge runs as deployed (docker-compose's ``bridge``: a polling worker of two processes): the
gateways are split into two shards, each polled by a process of its own with all its buses in
one event loop, readings decoded and stored in bulk while the round goes on. Each process
reports its round times, CPU and peak memory; PostgreSQL's CPU (every backend, reaped ones
included) is read apart from /proc. Then the floor, ../shared/baselines/poll_baseline.py
unmodified (one process), polls the same simulator.

Efficiency is the ideal round time (the bus time of one gateway's 32 reads, from the frame
sizes at the baud rate) over the measured one; the bridge's round is measured from the first
request to the last answer stored.

    python -m bench.polling [--gateways 10,100,300,1000] [--meters-per-gateway 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BASELINES, ROOT, recreate_database, require_free_disk, write_result

BENCH_DB = "bars_bench_polling"
BAUD = 9600


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_simulator(gateways: int, meters: int, base_port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simulate_gateways",
            "--gateways",
            str(gateways),
            "--meters-per-gateway",
            str(meters),
            "--baud",
            str(BAUD),
            "--base-port",
            str(base_port),
            "--profiles",
            "DDSY1352",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("serving"):
            return process
    raise SystemExit("the simulator did not start")


def run_bridges(gateways: int, meters: int, rounds: int, shards: int, env: dict) -> list[dict]:
    """Start one bridge process per shard together; their JSON reports."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.polling",
                "--bridge",
                "--gateways",
                str(gateways),
                "--meters-per-gateway",
                str(meters),
                "--rounds",
                str(rounds),
                "--shard",
                str(shard),
                "--shards",
                str(shards),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for shard in range(shards)
    ]
    reports = []
    for process in processes:
        output, _ = process.communicate(timeout=3600)
        if process.returncode:
            raise SystemExit(f"a bridge process failed:\n{output}")
        reports.append(json.loads(output.strip().splitlines()[-1]))
    return reports


def seed_registry(gateways: int, meters: int, base_port: int, env: dict) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.polling",
            "--seed",
            "--gateways",
            str(gateways),
            "--meters-per-gateway",
            str(meters),
            "--base-port",
            str(base_port),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )


def postgres_cpu_seconds() -> float:
    """CPU of every PostgreSQL process, with the backends that already exited (their time is
    in the postmaster's children's account)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
        if int(fields[1]) == 1 or (entry / "cmdline").read_bytes().find(b"-D") >= 0:
            total += (int(fields[13]) + int(fields[14])) / ticks
    return total


def run_floor(gateways: int, meters: int, base_port: int) -> dict:
    output = subprocess.run(
        [
            sys.executable,
            str(BASELINES / "poll_baseline.py"),
            "--gateways",
            str(gateways),
            "--units",
            str(meters),
            "--base-port",
            str(base_port),
            "--baud",
            str(BAUD),
            "--rounds",
            "2",
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def seed_main(args: argparse.Namespace) -> None:
    """The registry for G simulated gateways, in a tenant of its own."""
    _setup_django()
    from metering.models import Gateway, Meter
    from tenancy.context import use_tenant
    from tenancy.models import Site, Tenant

    tenant = Tenant.objects.create(name="Polling bench", slug=f"poll-{args.gateways}")
    with use_tenant(tenant):
        site = Site.objects.create(tenant=tenant, code="P1", name="bench")
        gateways = Gateway.objects.bulk_create(
            Gateway(
                tenant=tenant,
                site=site,
                name=f"G{index}",
                host="127.0.0.1",
                port=args.base_port + index,
                timeout_ms=2000,
                retries=1,
            )
            for index in range(args.gateways)
        )
        Meter.objects.bulk_create(
            Meter(
                tenant=tenant,
                site=site,
                serial_number=str(gateway.port * 1000 + unit),
                profile="DDSY1352",
                utility="electricity",
                gateway=gateway,
                unit_id=unit,
            )
            for gateway in gateways
            for unit in range(1, args.meters_per_gateway + 1)
        )


def bridge_main(args: argparse.Namespace) -> None:
    """One bridge process: its shard of the gateways, round after round."""
    _setup_django()
    from datetime import timedelta

    from gateway_bridge import rounds
    from gateway_bridge.simulator import read_wire_seconds
    from metering.meter_profiles import get_profile
    from metering.models import Gateway
    from metering.slots import current_slot
    from tenancy.context import use_tenant
    from tenancy.models import Tenant

    tenant = Tenant.objects.get(slug=f"poll-{args.gateways}")
    profile = get_profile("DDSY1352")
    with use_tenant(tenant):
        ids = list(Gateway.objects.order_by("id").values_list("id", flat=True))
        shard = ids[args.shard :: args.shards]
        ideal = args.meters_per_gateway * sum(
            read_wire_seconds(block.count, BAUD) for block in profile.blocks
        )
        slot = current_slot(tenant)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        durations, stored, failures = [], 0, 0
        for index in range(args.rounds):
            started = time.perf_counter()
            summary = rounds.run_round(tenant, shard, slot + timedelta(minutes=15 * index))
            durations.append(time.perf_counter() - started)
            stored += summary.stored
            failures += summary.failures
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    print(
        json.dumps(
            {
                "rounds_s": [round(d, 3) for d in durations],
                "ideal_s": round(ideal, 3),
                "stored": stored,
                "failures": failures,
                "cpu_s": round(cpu, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", default="10,100,300,1000")
    parser.add_argument("--meters-per-gateway", type=int, default=32)
    parser.add_argument("--base-port", type=int, default=21000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shards", type=int, default=2, help="bridge processes")
    parser.add_argument("--shard", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--bridge", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed or args.bridge:
        args.gateways = int(args.gateways)
        (seed_main if args.seed else bridge_main)(args)
        return
    require_free_disk(2)
    env = {
        **os.environ,
        "DATABASE_URL": recreate_database(BENCH_DB),
        "BARS_LOG_LEVEL": "ERROR",
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    last = {}
    for gateways in [int(g) for g in str(args.gateways).split(",")]:
        meters = args.meters_per_gateway
        seed_registry(gateways, meters, args.base_port, env)
        simulator = start_simulator(gateways, meters, args.base_port)
        try:
            sim_cpu_before = _cpu_seconds(simulator.pid)
            pg_before = postgres_cpu_seconds()
            bridges = run_bridges(gateways, meters, args.rounds, args.shards, env)
            pg_cpu = postgres_cpu_seconds() - pg_before
            sim_cpu = _cpu_seconds(simulator.pid) - sim_cpu_before
            requests = args.rounds * gateways * meters  # one block: one request a meter
            floor = run_floor(gateways, meters, args.base_port)
            sim_rss = _peak_rss_mb(simulator.pid)
        finally:
            simulator.terminate()
            simulator.wait(30)
        round_s = min(
            max(bridge["rounds_s"][index] for bridge in bridges) for index in range(args.rounds)
        )
        ideal = bridges[0]["ideal_s"]
        stored = sum(bridge["stored"] for bridge in bridges)
        figures = {
            "gateways": gateways,
            "meters": gateways * meters,
            "baud": BAUD,
            "bridge_processes": args.shards,
            "efficiency": round(ideal / round_s, 3),
            "baseline_efficiency": floor["efficiency"],
            "efficiency_ratio": round(ideal / round_s / floor["efficiency"], 3),
            "round_s": round(round_s, 3),
            "ideal_s": ideal,
            "stored_readings": stored,
            "failures": sum(bridge["failures"] for bridge in bridges),
            "cpu_us_per_reading": round(
                sum(bridge["cpu_s"] for bridge in bridges) / max(stored, 1) * 1e6, 1
            ),
            "postgres_cpu_us_per_reading": round(pg_cpu / max(stored, 1) * 1e6, 1),
            "baseline_cpu_us_per_reading": floor["cpu_us_per_reading"],
            "peak_rss_mb": max(bridge["peak_rss_mb"] for bridge in bridges),
            "simulator_cpu_us_per_request": round(sim_cpu / requests * 1e6, 1),
            "simulator_peak_rss_mb": round(sim_rss, 1),
            "baseline": floor,
        }
        print(
            f"G={gateways:<5} efficiency {figures['efficiency']:.3f} (floor "
            f"{figures['baseline_efficiency']:.3f}, ratio {figures['efficiency_ratio']:.3f})  "
            f"bridge {figures['cpu_us_per_reading']} µs/reading + PostgreSQL "
            f"{figures['postgres_cpu_us_per_reading']} µs  peak {figures['peak_rss_mb']} MB  "
            f"simulator {figures['simulator_cpu_us_per_request']} µs/request "
            f"{figures['simulator_peak_rss_mb']} MB",
            flush=True,
        )
        write_result(f"polling-{gateways}", figures)
        last = figures
    print(json.dumps(last), flush=True)


if __name__ == "__main__":
    main()
