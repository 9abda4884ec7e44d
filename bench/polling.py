"""Polling benchmark: G gateways × 32 meters at 9600 baud, the bridge as deployed, beside the floor.

Everything runs as docker-compose deploys it, on this one machine of two cores: production
settings (``DJANGO_DEBUG=0``, ``bench.common.production_env``), PostgreSQL, Redis as the Celery
broker (a database of its own, emptied first), the compose ``bridge`` (``celery -A config worker
--queues polling --concurrency 2``) and the compose ``worker`` (``--queues default --concurrency
2``), which runs the validation the bridge hands over after each shard's round commits
(``verification.validate_readings``, sent by name).

Each size G is measured against two simulators in turn, each with fresh workers:

- ``simulator``: the project's ``manage.py simulate_gateways`` (DDSY1352 meters, 20-register
  reads), whose answers carry the meter's serial, which the bridge checks;
- ``bus_server``: ../shared/baselines/bus_server.py, unmodified: stdlib gateways with physically
  timed buses. Its registers are a fixed pattern with no serial in them, so its meters are
  registered with serials that are not numbers, which the bridge's identity check skips.

Against each: the bridge polls (warm-up, then ``--rounds`` timed rounds, each a slot of its own),
the validation runs, then the floor, ../shared/baselines/poll_baseline.py unmodified (one
process, one 17-register read a meter, two rounds, nothing stored), polls the same gateways.

What is timed:

- A bridge round: the bench sends one ``gateway_bridge.poll_shard`` task per shard to the
  ``polling`` queue, as ``poll_site`` does, in shards of half the gateways (what a deployer sets
  ``BARS_POLL_SHARD_SIZE`` to so that both bridge processes work; the default 500 would leave one
  idle below 500 gateways). The round runs from the first shard task's start to the last one's
  end in the worker's clock (Celery's task_prerun and task_postrun signals, which this module
  connects when a worker loads it with ``--include bench.polling``): the tenant lookup, planning
  the shard, connecting, every request, decoding, storing every reading, the per-gateway rows
  and the hand-over to validation. The send to start (through Redis) is reported apart
  (``dispatch_ms``), and so are the best round's phases: before the first gateway started, from
  then to the last gateway's last answer (``PollRound``), and after it. The next round is sent
  when every shard of the last one ended; the best timed round is reported.
- Warm-up: before the timed rounds, rounds are sent until every process of the bridge's pool
  has run a shard (a deployed bridge has; its first task pays for connecting to the broker and
  the database). Their CPU is reported apart and not counted.
- Efficiency: the ideal round (one gateway's reads on the wire at the baud rate, from the frame
  sizes) over the measured one. The floor times only its reads: its connections are opened
  before its clock starts.
- CPU, from /proc, over the timed rounds: the bridge worker (main process and pool processes),
  PostgreSQL (every server process, those that exited included: on a shared machine another
  database's work would count too, so the whole machine's busy and stolen CPU is reported
  beside it), the simulator; per stored reading (the simulator per request).
- Validation, apart: the compose ``worker`` consumes nothing while the bridge polls (it is
  started on a queue nobody uses); after the last round the bench tells it to consume
  ``default`` (Celery's ``add_consumer``), where the hand-overs of every round (warm-up
  included) waited. Reported: from the end of the last round, and from that command, until the
  task that checked the readings ended; a query then confirms that no reading is left without
  its check; the worker's and PostgreSQL's CPU over that span, per reading checked.

Where this differs from deployment: in production the ``worker`` validates a shard's readings as
soon as that shard commits, so the validation of one shard shares the two cores with the shards
still polling, and the next round; here it waits, so the rounds time the bridge alone. Rounds
follow each other at once, not every 15 minutes, so the database connections are still open from
the round before (``CONN_MAX_AGE`` is 60 s; the reading writer's own connection is opened every
round as in production). The gateways, PostgreSQL, Redis and the workers share one machine's two
cores; in production the meters are hardware and the database a machine of its own. Beat is not
run: the bench sends the shards itself, with the slot as an argument.

    python -m bench.polling [--gateways 10,100,300,1000] [--meters-per-gateway 32] [--rounds 2]
        [--simulators simulator,bus_server]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BASELINES,
    ROOT,
    production_env,
    recreate_database,
    require_free_disk,
    write_result,
)

BENCH_DB = "bars_bench_polling"
BENCH_REDIS = os.environ.get("BARS_BENCH_POLLING_REDIS", "redis://127.0.0.1:6379/11")
BAUD = 9600
WORKER_PROCESSES = 2  # compose: --concurrency 2, for the bridge and for the worker
SIMULATORS = ("simulator", "bus_server")
BUS_SERVER_PORT_OFFSET = 3000  # bus_server's gateways listen above the simulator's
TIMINGS_KEY = "bench:polling:tasks"
TIMER_ENV = "BARS_BENCH_POLLING_TIMER"
HOLD_QUEUE = "bench-polling-hold"
BRIDGE_NAME = "bridge@bench-polling"
WORKER_NAME = "worker@bench-polling"
TARGET_RATIO = {10: 0.95, 100: 0.97, 300: 0.93}
TARGET_CPU_US = 200.0
WARM_UP_ROUNDS = 3  # at most  # bridge CPU per stored reading, from 100 gateways up


# --- inside the workers: each task's times, pushed to Redis ----------------------------------


def _install_task_timer() -> None:
    """Connect the signals that time each task in the worker's pool process: wall clock at
    start and end, the process's CPU over the task, its return value."""
    import redis
    from celery.signals import task_postrun, task_prerun

    started: dict[str, tuple[float, float]] = {}

    def own_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def on_start(task_id: str, **_: Any) -> None:
        started[task_id] = (time.time(), own_cpu())

    def on_end(task_id: str, task: Any, retval: Any = None, **_: Any) -> None:
        end, cpu = time.time(), own_cpu()
        start, cpu_start = started.pop(task_id, (end, cpu))
        record = {
            "id": task_id,
            "task": task.name,
            "pid": os.getpid(),
            "start": start,
            "end": end,
            "cpu_s": cpu - cpu_start,
            "retval": retval if isinstance(retval, dict) else None,
        }
        store = redis.Redis.from_url(os.environ["REDIS_URL"])
        store.rpush(TIMINGS_KEY, json.dumps(record, default=str))
        store.close()

    task_prerun.connect(on_start, weak=False)
    task_postrun.connect(on_end, weak=False)


if os.environ.get(TIMER_ENV):
    _install_task_timer()


# --- processes and their CPU -----------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _tree(root: int) -> list[int]:
    """``root`` and every live process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU of a process and everything below it, children that exited included (their time is
    in their parent's children's account once reaped)."""
    total = 0.0
    for pid in _tree(root):
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICKS
    return total


def tree_peak_rss_mb(root: int) -> float:
    peak = 0.0
    for pid in _tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far, every core (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / _TICKS, steal / _TICKS


def postgres_cpu_seconds() -> float:
    """CPU of every PostgreSQL process, with the backends that already exited (their time is
    in the postmaster's children's account)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = _stat(int(entry.name))
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS
        if int(fields[1]) == 1 or (entry / "cmdline").read_bytes().find(b"-D") >= 0:
            total += (int(fields[13]) + int(fields[14])) / _TICKS
    return total


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


def _wait_for_line(process: subprocess.Popen, prefix: str, what: str) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(prefix):
            return
    raise SystemExit(f"{what} did not start")


def start_simulator(
    kind: str, gateways: int, meters: int, base_port: int, env: dict
) -> subprocess.Popen:
    if kind == "simulator":
        command = [
            sys.executable,
            "manage.py",
            "simulate_gateways",
            "--profiles",
            "DDSY1352",
            "--meters-per-gateway",
        ]
        ready = "serving"
    else:
        command = [sys.executable, str(BASELINES / "bus_server.py"), "--units"]
        ready = "listening"
    command += [str(meters), "--gateways", str(gateways)]
    command += ["--base-port", str(base_port), "--baud", str(BAUD)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    _wait_for_line(process, ready, kind)
    return process


def start_worker(name: str, queues: str, env: dict, log: Path) -> subprocess.Popen:
    """A worker started as compose starts it, plus the task timer."""
    with log.open("w") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--hostname",
                name,
                "--queues",
                queues,
                "--concurrency",
                str(WORKER_PROCESSES),
                "--loglevel",
                "INFO",
                "--include",
                "bench.polling",
            ],
            cwd=ROOT,
            env={**env, TIMER_ENV: "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Broker:
    """The bench's side of Redis: sending tasks by name, controlling workers, the timings."""

    def __init__(self, url: str) -> None:
        import redis
        from celery import Celery

        self.app = Celery("bench-polling", broker=url)
        self.store = redis.Redis.from_url(url)

    def empty(self) -> None:
        self.store.flushdb()

    def wait_ready(
        self, names: list[str], workers: list[subprocess.Popen], logs: list[Path]
    ) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for worker, log in zip(workers, logs, strict=True):
                if worker.poll() is not None:
                    raise SystemExit(f"a worker stopped:\n{log.read_text()[-3000:]}")
            replies = self.app.control.ping(names, timeout=1) or []
            answered = {name for reply in replies for name in reply}
            if answered >= set(names):
                return
        raise SystemExit(f"workers not ready: {names}")

    def send(self, task: str, kwargs: dict[str, Any], queue: str) -> str:
        return self.app.send_task(task, kwargs=kwargs, queue=queue).id

    def consume(self, worker: str, queue: str) -> None:
        replies = self.app.control.add_consumer(queue, destination=[worker], reply=True)
        if not replies:
            raise SystemExit(f"{worker} did not answer add_consumer")

    def records(self, expected: int, timeout: float, what: str) -> list[dict]:
        found: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(found) < expected:
            popped = self.store.blpop([TIMINGS_KEY], timeout=1)  # within the socket's timeout
            if popped is None:
                if time.monotonic() >= deadline:
                    raise SystemExit(f"{what}: {len(found)} of {expected} tasks ended in time")
                continue
            found.append(json.loads(popped[1]))
        return found


# --- the registry ------------------------------------------------------------------------------


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def seed_main(args: argparse.Namespace) -> None:
    """The registry for G gateways of one simulator, in a tenant of its own; prints the tenant,
    the gateways in order, the first slot and the bridge's ideal round as JSON."""
    _setup_django()
    from datetime import timedelta

    from gateway_bridge.simulator import read_wire_seconds
    from metering.meter_profiles import get_profile
    from metering.models import Gateway, Meter
    from metering.slots import current_slot
    from tenancy.context import use_tenant
    from tenancy.models import Site, Tenant

    gateway_count = int(args.gateways)
    tenant = Tenant.objects.create(
        name=f"Polling bench ({args.seed})", slug=f"poll-{args.seed}-{gateway_count}"
    )
    profile = get_profile("DDSY1352")
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
            for index in range(gateway_count)
        )
        # The simulator's meters report their serial (port and unit) and the bridge checks it;
        # bus_server's registers hold no serial, so its meters get serials that are not numbers.
        serial = "{port}{unit:03d}" if args.seed == "simulator" else "B{port}-{unit}"
        Meter.objects.bulk_create(
            Meter(
                tenant=tenant,
                site=site,
                serial_number=serial.format(port=gateway.port, unit=unit),
                profile="DDSY1352",
                utility="electricity",
                gateway=gateway,
                unit_id=unit,
            )
            for gateway in gateways
            for unit in range(1, args.meters_per_gateway + 1)
        )
        slots = args.rounds + WARM_UP_ROUNDS + 1
        first_slot = current_slot(tenant) - timedelta(
            minutes=tenant.reading_interval_minutes * slots
        )
    ideal = args.meters_per_gateway * sum(
        read_wire_seconds(block.count, BAUD) for block in profile.blocks
    )
    print(
        json.dumps(
            {
                "tenant_id": tenant.pk,
                "gateway_ids": [gateway.pk for gateway in gateways],
                "first_slot": first_slot.isoformat(),
                "interval_minutes": tenant.reading_interval_minutes,
                "ideal_s": ideal,
            }
        )
    )


def seed_registry(
    kind: str, gateways: int, args: argparse.Namespace, base_port: int, env: dict
) -> dict:
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.polling",
            "--seed",
            kind,
            "--gateways",
            str(gateways),
            "--meters-per-gateway",
            str(args.meters_per_gateway),
            "--base-port",
            str(base_port),
            "--rounds",
            str(args.rounds),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def query(database_url: str, sql: str) -> list[list[str]]:
    """Rows of one SQL statement, through psql (the bench's own process has no Django)."""
    output = subprocess.run(
        ["psql", database_url, "-X", "-A", "-t", "-F", "\t", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in output.splitlines() if line]


def unchecked_readings(database_url: str, tenant_id: int) -> tuple[int, int]:
    """(readings of the tenant, those without a check)."""
    ((total, unchecked),) = query(
        database_url,
        "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM "
        "verification_readingcheck c WHERE c.tenant_id = r.tenant_id AND c.reading_id = r.id)) "
        f"FROM metering_reading r WHERE r.tenant_id = {int(tenant_id)}",
    )
    return int(total), int(unchecked)


def poll_spans(database_url: str, tenant_id: int) -> dict[float, tuple[float, float]]:
    """Per slot (as a Unix time): when the first gateway started and the last one finished
    (``PollRound``), as Unix times."""
    rows = query(
        database_url,
        "SELECT extract(epoch FROM slot), extract(epoch FROM min(started_at)), "
        "extract(epoch FROM max(finished_at)) FROM metering_pollround "
        f"WHERE tenant_id = {int(tenant_id)} GROUP BY slot",
    )
    return {float(slot): (float(first), float(last)) for slot, first, last in rows}


# --- one pairing: the bridge, the validation and the floor against one simulator ----------------


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


class RoundSender:
    """Sends a round's shards to the ``polling`` queue, as ``poll_site`` does, one slot after
    the other, and waits until every shard's task ended."""

    def __init__(self, broker: Broker, registry: dict, shard_size: int) -> None:
        ids = registry["gateway_ids"]
        self.broker = broker
        self.registry = registry
        self.shards = [ids[i : i + shard_size] for i in range(0, len(ids), shard_size)]
        self.sent = 0

    def round(self, what: str) -> list[dict]:
        from datetime import datetime, timedelta

        registry = self.registry
        slot = datetime.fromisoformat(registry["first_slot"]) + timedelta(
            minutes=registry["interval_minutes"] * self.sent
        )
        self.sent += 1
        sent_at = time.time()
        for shard in self.shards:
            self.broker.send(
                "gateway_bridge.poll_shard",
                {
                    "tenant_id": registry["tenant_id"],
                    "gateway_ids": shard,
                    "slot": slot.isoformat(),
                },
                "polling",
            )
        records = self.broker.records(len(self.shards), 1800, what)
        for record in records:
            record["sent_at"] = sent_at
            record["slot"] = slot.timestamp()
        return records


def warm_up(sender: RoundSender, bridge_pid: int) -> list[list[dict]]:
    """Rounds until every process of the bridge's pool has run a shard once (a deployed bridge
    has: its first task pays for connecting to the database and the broker); not timed."""
    pool = set(_tree(bridge_pid)) - {bridge_pid}
    warmups: list[list[dict]] = []
    while not pool <= {record["pid"] for records in warmups for record in records}:
        if len(warmups) == WARM_UP_ROUNDS:
            raise SystemExit(f"the bridge's processes {sorted(pool)} did not all get a shard")
        warmups.append(sender.round(f"warm-up {len(warmups) + 1}"))
    return warmups


def run_pairing(
    kind: str, gateways: int, args: argparse.Namespace, env: dict, broker: Broker, logs: Path
) -> dict:
    meters = args.meters_per_gateway
    base_port = args.base_port + (BUS_SERVER_PORT_OFFSET if kind == "bus_server" else 0)
    shard_size = math.ceil(gateways / WORKER_PROCESSES)
    worker_env = {**env, "BARS_POLL_SHARD_SIZE": str(shard_size)}
    log(f"G={gateways} {kind}: registry")
    registry = seed_registry(kind, gateways, args, base_port, env)
    log(f"G={gateways} {kind}: starting the simulator and the workers")
    simulator = start_simulator(kind, gateways, meters, base_port, env)
    bridge_log, worker_log = (
        logs / f"bridge-{kind}-{gateways}.log",
        logs / f"worker-{kind}-{gateways}.log",
    )
    bridge = start_worker(BRIDGE_NAME, "polling", worker_env, bridge_log)
    worker = start_worker(WORKER_NAME, HOLD_QUEUE, worker_env, worker_log)
    try:
        broker.wait_ready([BRIDGE_NAME, WORKER_NAME], [bridge, worker], [bridge_log, worker_log])
        sender = RoundSender(broker, registry, shard_size)
        log(f"G={gateways} {kind}: warm-up")
        warmups = warm_up(sender, bridge.pid)
        bridge_cpu, pg_cpu = tree_cpu_seconds(bridge.pid), postgres_cpu_seconds()
        sim_cpu, machine = _cpu_seconds(simulator.pid), machine_cpu_seconds()
        span = time.monotonic()
        log(f"G={gateways} {kind}: rounds")
        rounds = [sender.round(f"round {index + 1}") for index in range(args.rounds)]
        bridge_cpu = tree_cpu_seconds(bridge.pid) - bridge_cpu
        pg_cpu = postgres_cpu_seconds() - pg_cpu
        sim_cpu = _cpu_seconds(simulator.pid) - sim_cpu
        span = time.monotonic() - span
        machine_busy, machine_steal = (
            after - before for after, before in zip(machine_cpu_seconds(), machine, strict=True)
        )
        bridge_rss = tree_peak_rss_mb(bridge.pid)

        rounds_end = max(record["end"] for records in rounds for record in records)
        worker_cpu, pg_before = tree_cpu_seconds(worker.pid), postgres_cpu_seconds()
        log(f"G={gateways} {kind}: validation")
        machine_before_validation = machine_cpu_seconds()[0]
        released = time.time()
        broker.consume(WORKER_NAME, "default")
        validations = broker.records(sender.sent * len(sender.shards), 1800, "validation")
        worker_cpu = tree_cpu_seconds(worker.pid) - worker_cpu
        validation_pg = postgres_cpu_seconds() - pg_before
        validation_machine = machine_cpu_seconds()[0] - machine_before_validation
        validation_span = time.time() - released
        worker_rss = tree_peak_rss_mb(worker.pid)
        readings, unchecked = unchecked_readings(env["DATABASE_URL"], registry["tenant_id"])
        spans = poll_spans(env["DATABASE_URL"], registry["tenant_id"])

        sim_before_floor, machine_before_floor = _cpu_seconds(simulator.pid), machine_cpu_seconds()
        log(f"G={gateways} {kind}: floor")
        floor_started = time.monotonic()
        floor = run_floor(gateways, meters, base_port)
        floor["simulator_cpu_us_per_request"] = round(
            (_cpu_seconds(simulator.pid) - sim_before_floor) / (2 * gateways * meters) * 1e6, 1
        )
        floor["machine_cores_busy"] = round(
            (machine_cpu_seconds()[0] - machine_before_floor[0])
            / (time.monotonic() - floor_started),
            2,
        )
    finally:
        log(f"G={gateways} {kind}: stopping")
        for process in (bridge, worker, simulator):
            stop(process)
        log(f"G={gateways} {kind}: stopped")

    summaries = [record["retval"] or {} for records in rounds for record in records]
    stored = sum(summary.get("stored", 0) for summary in summaries)
    durations = [
        max(r["end"] for r in records) - min(r["start"] for r in records) for records in rounds
    ]
    round_s = min(durations)
    best = rounds[durations.index(round_s)]
    first_started, last_finished = spans[best[0]["slot"]]
    phases = {
        "planning_s": round(first_started - min(r["start"] for r in best), 3),
        "polling_s": round(last_finished - first_started, 3),
        "storing_after_last_answer_s": round(max(r["end"] for r in best) - last_finished, 3),
    }
    ideal = registry["ideal_s"]
    requests = args.rounds * gateways * meters  # one block: one request a meter
    checked = sum((record["retval"] or {}).get("checked", 0) for record in validations)
    working = [r for r in validations if (r["retval"] or {}).get("checked")]
    efficiency = ideal / round_s
    bridge_figures = {
        "efficiency": round(efficiency, 3),
        "round_s": round(round_s, 3),
        "rounds_s": [round(d, 3) for d in durations],
        "best_round_phases": phases,
        "ideal_s": round(ideal, 3),
        "stored_readings": stored,
        "failures": sum(summary.get("failures", 0) for summary in summaries),
        "dispatch_ms": round(
            max(r["start"] - r["sent_at"] for records in rounds for r in records) * 1000, 1
        ),
        "cpu_us_per_reading": round(bridge_cpu / max(stored, 1) * 1e6, 1),
        "task_cpu_us_per_reading": round(
            sum(r["cpu_s"] for records in rounds for r in records) / max(stored, 1) * 1e6, 1
        ),
        "warm_up_rounds": len(warmups),
        "warm_up_task_cpu_us_per_reading": round(
            sum(r["cpu_s"] for r in warmups[0])
            / max(sum((r["retval"] or {}).get("stored", 0) for r in warmups[0]), 1)
            * 1e6,
            1,
        ),
        "postgres_cpu_us_per_reading": round(pg_cpu / max(stored, 1) * 1e6, 1),
        "simulator_cpu_us_per_request": round(sim_cpu / requests * 1e6, 1),
        "cores_busy": round((bridge_cpu + pg_cpu + sim_cpu) / span, 2),
        "machine_cores_busy": round(machine_busy / span, 2),
        "machine_cores_stolen": round(machine_steal / span, 2),
        "peak_rss_mb": round(bridge_rss, 1),
    }
    validation = {
        "readings": readings,
        "checked": checked,
        "left_unchecked": unchecked,
        "suspect": sum((record["retval"] or {}).get("suspect", 0) for record in validations),
        "tasks": len(validations),
        "from_round_end_s": round(max(r["end"] for r in working) - rounds_end, 3)
        if working
        else None,
        "from_release_s": round(max(r["end"] for r in working) - released, 3) if working else None,
        "task_s": round(max(r["end"] - r["start"] for r in working), 3) if working else None,
        "worker_cpu_us_per_reading": round(worker_cpu / max(checked, 1) * 1e6, 1),
        "postgres_cpu_us_per_reading": round(validation_pg / max(checked, 1) * 1e6, 1),
        "machine_cores_busy": round(validation_machine / validation_span, 2),
        "peak_rss_mb": round(worker_rss, 1),
    }
    ratio = efficiency / floor["efficiency"]
    return {
        "bridge": bridge_figures,
        "validation": validation,
        "floor": floor,
        "efficiency_ratio": round(ratio, 3),
    }


def cpu_arithmetic(pairing: dict, gateways: int, meters: int) -> dict:
    """Where a reading's CPU goes, and what the machine's cores can therefore sustain: during a
    round as benchmarked (bridge, PostgreSQL storing, the simulator), and as deployed, where the
    validation runs beside the rounds (its worker and PostgreSQL's share added). The simulator
    stands for the meters' own hardware, so each figure is given with and without it."""
    bridge, validation = pairing["bridge"], pairing["validation"]
    per_reading = {
        "bridge": bridge["cpu_us_per_reading"],
        "postgres_storing": bridge["postgres_cpu_us_per_reading"],
        "validation_worker": validation["worker_cpu_us_per_reading"],
        "postgres_validating": validation["postgres_cpu_us_per_reading"],
        "simulator": bridge["simulator_cpu_us_per_request"],
    }
    storing = per_reading["bridge"] + per_reading["postgres_storing"]
    deployed = storing + per_reading["validation_worker"] + per_reading["postgres_validating"]
    simulator = per_reading["simulator"]
    readings = gateways * meters
    cores = os.cpu_count() or 1
    pace = readings / bridge["ideal_s"]  # readings a second at the buses' own pace

    def budget(us_per_reading: float) -> dict[str, float]:
        return {
            "us_per_reading": round(us_per_reading, 1),
            "cores_needed_at_bus_pace": round(pace * us_per_reading / 1e6, 2),
            "shortest_round_s_the_cores_allow": round(readings * us_per_reading / 1e6 / cores, 3),
        }

    return {
        "us_per_reading": per_reading,
        "cores_available": cores,
        "readings_per_s_at_bus_pace": round(pace, 1),
        "bridge_alone": budget(per_reading["bridge"]),
        "round": budget(storing),
        "round_with_simulator": budget(storing + simulator),
        "deployed": budget(deployed),
        "deployed_with_simulator": budget(deployed + simulator),
    }


def targets_met(pairing: dict, gateways: int) -> dict[str, bool | None]:
    ratio, cpu = TARGET_RATIO.get(gateways), TARGET_CPU_US if gateways >= 100 else None
    return {
        "efficiency_ratio": None if ratio is None else pairing["efficiency_ratio"] >= ratio,
        "cpu_us_per_reading": None
        if cpu is None
        else pairing["bridge"]["cpu_us_per_reading"] <= cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", default="10,100,300,1000")
    parser.add_argument("--meters-per-gateway", type=int, default=32)
    parser.add_argument("--base-port", type=int, default=21000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--simulators", default=",".join(SIMULATORS), help="simulator, bus_server or both"
    )
    parser.add_argument("--seed", choices=SIMULATORS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed_main(args)
        return
    require_free_disk(2)
    env = production_env(recreate_database(BENCH_DB), redis_url=BENCH_REDIS)
    broker = Broker(BENCH_REDIS)
    broker.empty()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    kinds = [kind for kind in args.simulators.split(",") if kind]
    last: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-polling-") as scratch:
        for gateways in [int(g) for g in str(args.gateways).split(",")]:
            meters = args.meters_per_gateway
            pairings = {
                kind: run_pairing(kind, gateways, args, env, broker, Path(scratch))
                for kind in kinds
            }
            for pairing in pairings.values():
                pairing["targets_met"] = targets_met(pairing, gateways)
                pairing["cpu_arithmetic"] = cpu_arithmetic(pairing, gateways, meters)
            main_pairing = pairings[kinds[0]]
            figures: dict[str, Any] = {
                "gateways": gateways,
                "meters": gateways * meters,
                "baud": BAUD,
                "rounds": args.rounds,
                "bridge_processes": WORKER_PROCESSES,
                "shard_size": math.ceil(gateways / WORKER_PROCESSES),
                "settings": "production (DJANGO_DEBUG=0), PostgreSQL, Redis broker, "
                "validation by the worker after the rounds",
                "simulator_of_headline": kinds[0],
                "efficiency": main_pairing["bridge"]["efficiency"],
                "baseline_efficiency": main_pairing["floor"]["efficiency"],
                "efficiency_ratio": main_pairing["efficiency_ratio"],
                "cpu_us_per_reading": main_pairing["bridge"]["cpu_us_per_reading"],
                "postgres_cpu_us_per_reading": main_pairing["bridge"][
                    "postgres_cpu_us_per_reading"
                ],
                "baseline_cpu_us_per_reading": main_pairing["floor"]["cpu_us_per_reading"],
                "targets": {
                    "efficiency_ratio": TARGET_RATIO.get(gateways),
                    "cpu_us_per_reading": TARGET_CPU_US if gateways >= 100 else None,
                },
                **pairings,
            }
            for kind, pairing in pairings.items():
                bridge, floor = pairing["bridge"], pairing["floor"]
                print(
                    f"G={gateways:<5} {kind:<10} efficiency {bridge['efficiency']:.3f} (floor "
                    f"{floor['efficiency']:.3f}, ratio {pairing['efficiency_ratio']:.3f})  "
                    f"bridge {bridge['cpu_us_per_reading']} µs/reading + PostgreSQL "
                    f"{bridge['postgres_cpu_us_per_reading']} µs, {bridge['failures']} failures; "
                    f"validation {pairing['validation']['from_round_end_s']} s after the round, "
                    f"worker {pairing['validation']['worker_cpu_us_per_reading']} µs + "
                    f"PostgreSQL {pairing['validation']['postgres_cpu_us_per_reading']} µs",
                    flush=True,
                )
            write_result(f"polling-{gateways}", figures)
            last = figures
    print(json.dumps(last), flush=True)


if __name__ == "__main__":
    main()
