"""API benchmark: account lookup and account list under gunicorn, against the bare-DRF floor.

The platform runs as in production: ``DJANGO_DEBUG=0`` with the production security settings
(requests carry ``X-Forwarded-Proto: https`` as from a TLS-terminating proxy), token
authentication, tenancy, the permission matrix and throttling (its budget set high enough not
to refuse, so its cost is still paid), on PostgreSQL with 100,000 accounts and Redis as the
cache. wrk loads it at 1, 10 and 50 connections. In the same run, the floor
(../shared/baselines/api_floor, unmodified) serves the same number of accounts from its own
database with the same gunicorn workers; only 2xx answers count for either.

    python -m bench.api [--accounts 100000] [--seconds 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import base64
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import (
    BASELINES,
    ROOT,
    drop_database,
    free_port,
    production_env,
    recreate_database,
    require_free_disk,
    run_wrk,
    wait_until_answering,
    write_result,
)

BENCH_DB = "bars_bench_api"
FLOOR_DB = "bars_baseline"
CONNECTIONS = (1, 10, 50)


def seed_platform(env: dict[str, str], accounts: int) -> list[str]:
    """Migrate and fill the bench database; returns the API token, the first and last account
    numbers and the first and last account ids."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    seeder = subprocess.run(
        [sys.executable, "-m", "bench.seed_accounts", str(accounts)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return seeder.stdout.split()


def seed_floor(env: dict[str, str], accounts: int) -> None:
    floor_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    recreate_database(FLOOR_DB)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASELINES / "api_floor",
        env=floor_env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            FLOOR_DB,
            "-q",
            "-c",
            "insert into floor_account (tenant_id, number, name, balance) select 1, "
            f"lpad(g::text, 10, '0'), 'customer '||g, 0 from generate_series(1,{accounts}) g",
        ],
        check=True,
        capture_output=True,
    )


@contextmanager
def gunicorn(cwd: Path, env: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi:application" if cwd == ROOT else "floor.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "error",
        ],
        cwd=cwd,
        env=env,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def cursor_for(position: int) -> str:
    """DRF's cursor for the page that starts after ``position`` (ordering -id)."""
    return base64.b64encode(f"p={position}".encode()).decode()


def write_scripts(
    directory: Path, token: str, sequence_range: tuple[int, int], id_range: tuple[int, int]
) -> dict[str, Path]:
    first_seq, last_seq = sequence_range
    headers = (
        f'wrk.headers["Authorization"] = "Token {token}"\n'
        'wrk.headers["X-Forwarded-Proto"] = "https"\n'
    )
    lookup = directory / "lookup.lua"
    lookup.write_text(
        headers
        + "math.randomseed(os.time())\n"
        + "local digits = {}\n"
        + "request = function()\n"
        + f"  local base = math.random({first_seq}, {last_seq})\n"
        + '  local s = string.format("%09d", base)\n'
        + "  local total = 0\n"
        + "  for i = 1, 9 do\n"
        + "    local d = tonumber(s:sub(10 - i, 10 - i))\n"
        + "    if i % 2 == 1 then d = d * 2; if d > 9 then d = d - 9 end end\n"
        + "    total = total + d\n"
        + "  end\n"
        + "  local number = s .. tostring((10 - total % 10) % 10)\n"
        + '  return wrk.format("GET", "/api/v1/accounts/" .. number .. "/")\n'
        + "end\n"
    )
    first_id, last_id = id_range
    positions = [random.randint(first_id + 100, last_id) for _ in range(2000)]
    cursors = ",".join(f'"{cursor_for(p)}"' for p in positions)
    listing = directory / "list.lua"
    listing.write_text(
        headers
        + f"local cursors = {{{cursors}}}\n"
        + "math.randomseed(os.time())\n"
        + "request = function()\n"
        + "  local cursor = cursors[math.random(1, #cursors)]\n"
        + '  return wrk.format("GET", "/api/v1/accounts/?cursor=" .. cursor)\n'
        + "end\n"
    )
    floor_list = directory / "floor_list.lua"
    floor_list.write_text('wrk.path = "/api/accounts/?page=7"\n')
    return {
        "lookup": lookup,
        "list": listing,
        "floor_lookup": BASELINES / "api_floor" / "lookup.lua",
        "floor_list": floor_list,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    args = parser.parse_args()
    require_free_disk(2)

    database_url = recreate_database(BENCH_DB)
    env = production_env(database_url)
    print(f"seeding {args.accounts:,} accounts …", flush=True)
    token, first, last, first_id, last_id = seed_platform(env, args.accounts)
    seed_floor(env, args.accounts)
    figures: dict[str, dict[str, dict[str, float]]] = {
        "lookup": {},
        "list": {},
        "floor_lookup": {},
        "floor_list": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        scripts = write_scripts(
            Path(scratch),
            token,
            (int(first[:-1]), int(last[:-1])),
            (int(first_id), int(last_id)),
        )
        with (
            gunicorn(ROOT, env, args.workers) as platform,
            gunicorn(BASELINES / "api_floor", env, args.workers) as floor,
        ):
            probe = {"Authorization": f"Token {token}", "X-Forwarded-Proto": "https"}
            assert wait_until_answering(f"{platform}/api/v1/accounts/{first}/", probe) == 200
            assert wait_until_answering(f"{floor}/api/accounts/0000000001/", {}) == 200
            for connections in CONNECTIONS:
                for name, url in (
                    ("lookup", platform),
                    ("floor_lookup", floor),
                    ("list", platform),
                    ("floor_list", floor),
                ):
                    result = run_wrk(url, scripts[name], connections, args.seconds)
                    figures[name][str(connections)] = result
                    print(
                        f"{name:<13} c={connections:<3} {result['rps']:>8.1f} rps  "
                        f"p50 {result['p50_ms']:>7.2f} ms  p99 {result['p99_ms']:>7.2f} ms  "
                        f"non-2xx {result['non_2xx']}",
                        flush=True,
                    )
    if not args.keep:
        drop_database(BENCH_DB)
        drop_database(FLOOR_DB)
    summary = {
        **figures,
        "lookup_ratio": {
            c: round(figures["lookup"][c]["rps"] / figures["floor_lookup"][c]["rps"], 3)
            for c in figures["lookup"]
        },
        "list_ratio": {
            c: round(figures["list"][c]["rps"] / figures["floor_list"][c]["rps"], 3)
            for c in figures["list"]
        },
        "accounts": args.accounts,
        "workers": args.workers,
        "seconds": args.seconds,
        "notes": "list: the platform's cursor page vs the floor's page 7 with a full count",
    }
    write_result("api", summary)


if __name__ == "__main__":
    main()
