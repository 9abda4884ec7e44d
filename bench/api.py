"""API benchmark: account lookup and account list under gunicorn, against the bare-DRF floor.

What runs. The platform as deployed: gunicorn with the project's ``gunicorn.conf.py`` (the file
the Dockerfile and docker-compose.yml start it with) and ``--workers`` sync workers (4, as
there), static files collected first, ``DJANGO_DEBUG=0`` with the production security settings
(the Content-Security-Policy on every answer), token authentication,
tenancy, the permission matrix and throttling (its budget set high enough not to refuse, so its
Redis round trip is still paid), on PostgreSQL with 100,000 accounts of one tenant and Redis as
the cache. The floor (../shared/baselines/api_floor, unmodified: DRF with no authentication, no
permissions, no middleware) serves the same number of accounts from its own database (analysed,
as the platform's is), under the same gunicorn, configuration file and worker count, twice: as
it ships (page-number pagination) and with ``bench/api_floor_cursor_settings.py`` (its settings
with DRF's cursor pagination, ordered ``-id``, 50 a page, as the platform's account list).

What is timed. wrk (``-t min(2, c) -c c -d SECONDS --latency``) at 1, 10 and 50 connections, one
measurement after the other, each against servers that are up and have answered once. A
latency is wrk's: from writing the request to the last byte of its response; the TCP connect
is not in it, though every request pays one (sync workers close the connection after each
response, as they do behind a proxy; the same for the floor). wrk corrects for coordinated
omission: a stall of T ms at one connection also counts as the T / (mean interval) requests
that would have queued behind it, so a handful of slow requests move p99. Requests/s count only
2xx answers.

- ``lookup``: ``GET /api/v1/accounts/NUMBER/``, a random valid account number;
  ``floor_lookup``: ``GET /api/accounts/NUMBER/``, a random one of the floor's.
- ``list``: ``GET /api/v1/accounts/?cursor=C``, one of 2,000 random positions: a page of 50,
  a keyset query on the id.
- ``floor_list_page_7``: ``GET /api/accounts/?page=7``: a ``COUNT(*)`` of all the rows, then
  ``OFFSET 300``, always the same page. Compared as "list: platform cursor page vs floor counted
  page 7", which is not like for like (the floor does more work per page).
- ``floor_list_cursor``: ``GET /api/accounts/?cursor=C`` at the same positions counted from the
  floor's first id: "list: platform cursor page vs floor cursor page", like for like.

How it differs from deployment. No TLS proxy: wrk speaks HTTP to gunicorn over loopback and
sends ``X-Forwarded-Proto: https`` as the proxy would. gunicorn binds 127.0.0.1 on a free port,
logs errors only (``BARS_LOG_LEVEL=ERROR`` too; Django logs nothing for a 2xx either way) and
keeps its control socket in a scratch directory, as three arbiters run side by side. The
throttle budget is raised and the secrets are throwaway. wrk, PostgreSQL, Redis and the servers
share this machine's cores. Python writes no bytecode cache (``PYTHONDONTWRITEBYTECODE``), which
slows only the workers' start: each loads its URL modules before it accepts.

    python -m bench.api [--accounts 100000] [--seconds 8] [--workers 4]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import urllib.request
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
FLOOR = BASELINES / "api_floor"
GUNICORN_CONFIG = ROOT / "gunicorn.conf.py"
CONNECTIONS = (1, 10, 50)
CURSOR_POSITIONS = 2000
# The runs in the order they are measured at each connection count.
RUNS = ("lookup", "floor_lookup", "list", "floor_list_page_7", "floor_list_cursor")
COMPARISONS = {
    "lookup: platform vs floor": ("lookup", "floor_lookup"),
    "list: platform cursor page vs floor counted page 7": ("list", "floor_list_page_7"),
    "list: platform cursor page vs floor cursor page": ("list", "floor_list_cursor"),
}
FLOOR_CURSOR_SETTINGS = "bench.api_floor_cursor_settings"
# Issue 11's target for the lookup: this share of the floor's requests/s, at this p99.
TARGET_CONNECTIONS, TARGET_RATIO, TARGET_P99_MS = "10", 0.80, 30.0

Figures = dict[str, dict[str, float]]


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
    """The floor's table with ids 1…accounts (a fresh database: its sequence starts at 1),
    analysed as ``bench.seed_accounts`` analyses the platform's: without statistics PostgreSQL
    answered the floor's cursor page by sorting every row, 24 ms against 0.1 ms."""
    recreate_database(FLOOR_DB)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=FLOOR,
        env=env,
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
            "-c",
            "analyze floor_account",
        ],
        check=True,
        capture_output=True,
    )


@contextmanager
def gunicorn(
    application: str, cwd: Path, env: dict[str, str], workers: int, scratch: Path
) -> Iterator[str]:
    """gunicorn with the deployment's configuration file; its control socket in ``scratch``."""
    port = free_port()
    control = scratch / f"gunicorn-{port}"
    control.mkdir()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            application,
            "--config",
            str(GUNICORN_CONFIG),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "error",
        ],
        cwd=cwd,
        env={**env, "XDG_RUNTIME_DIR": str(control)},
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def cursor_for(position: int) -> str:
    """DRF's cursor for the page that starts after ``position`` (ordering -id)."""
    return base64.b64encode(f"p={position}".encode()).decode()


def cursor_script(path: Path, headers: str, url: str, positions: list[int]) -> Path:
    cursors = ",".join(f'"{cursor_for(position)}"' for position in positions)
    path.write_text(
        headers
        + f"local cursors = {{{cursors}}}\n"
        + "math.randomseed(os.time())\n"
        + "request = function()\n"
        + "  local cursor = cursors[math.random(1, #cursors)]\n"
        + f'  return wrk.format("GET", "{url}?cursor=" .. cursor)\n'
        + "end\n"
    )
    return path


def write_scripts(
    directory: Path,
    token: str,
    sequence_range: tuple[int, int],
    id_range: tuple[int, int],
    floor_accounts: int,
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
    last_offset = min(last_id - first_id, floor_accounts - 1)
    offsets = [random.randint(100, last_offset) for _ in range(CURSOR_POSITIONS)]
    floor_page_7 = directory / "floor_list_page_7.lua"
    floor_page_7.write_text('wrk.path = "/api/accounts/?page=7"\n')
    return {
        "lookup": lookup,
        "floor_lookup": FLOOR / "lookup.lua",
        "list": cursor_script(
            directory / "list.lua",
            headers,
            "/api/v1/accounts/",
            [first_id + offset for offset in offsets],
        ),
        "floor_list_page_7": floor_page_7,
        "floor_list_cursor": cursor_script(
            directory / "floor_list_cursor.lua",
            "",
            "/api/accounts/",
            [1 + offset for offset in offsets],
        ),
    }


def require_cursor_pages(floor_cursor: str) -> None:
    """The override took: the floor's list answers with a cursor for its next page."""
    with urllib.request.urlopen(f"{floor_cursor}/api/accounts/", timeout=10) as response:  # noqa: S310 (loopback http)
        page = json.load(response)
    if "cursor=" not in (page.get("next") or "") or "count" in page:
        raise SystemExit(f"the floor with {FLOOR_CURSOR_SETTINGS} did not page by cursor")


def comparisons(figures: dict[str, Figures]) -> dict[str, dict[str, float]]:
    return {
        label: {
            connections: round(
                figures[platform][connections]["rps"] / figures[floor][connections]["rps"], 3
            )
            for connections in figures[platform]
        }
        for label, (platform, floor) in COMPARISONS.items()
    }


def target_met(figures: dict[str, Figures], ratios: dict[str, dict[str, float]]) -> bool:
    return (
        ratios["lookup: platform vs floor"][TARGET_CONNECTIONS] >= TARGET_RATIO
        and figures["lookup"][TARGET_CONNECTIONS]["p99_ms"] <= TARGET_P99_MS
    )


def print_summary(figures: dict[str, Figures], ratios: dict[str, dict[str, float]]) -> None:
    for label, (platform, floor) in COMPARISONS.items():
        print(label, flush=True)
        for connections, ratio in ratios[label].items():
            ours, theirs = figures[platform][connections], figures[floor][connections]
            print(
                f"  c={connections:<3} {ratio:>6.3f}×  platform {ours['rps']:>7.1f} rps "
                f"p50 {ours['p50_ms']:>6.2f} p99 {ours['p99_ms']:>7.2f} ms   floor "
                f"{theirs['rps']:>7.1f} rps p50 {theirs['p50_ms']:>6.2f} "
                f"p99 {theirs['p99_ms']:>7.2f} ms",
                flush=True,
            )
    verdict = "met" if target_met(figures, ratios) else "not met"
    print(
        f"target: lookup at {TARGET_CONNECTIONS} connections ≥ {TARGET_RATIO:.2f} × the "
        f"floor's requests/s with p99 ≤ {TARGET_P99_MS:.0f} ms: {verdict}",
        flush=True,
    )


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
    # The floor's directory stays as it is: no bytecode cache written into it.
    floor_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    seed_floor(floor_env, args.accounts)
    floor_cursor_env = {
        **floor_env,
        "DJANGO_SETTINGS_MODULE": FLOOR_CURSOR_SETTINGS,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    }
    figures: dict[str, Figures] = {name: {} for name in RUNS}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        # As every production start: the web process refuses to serve without them.
        env = {**env, "BARS_STATIC_ROOT": str(scratch / "static")}
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        scripts = write_scripts(
            scratch,
            token,
            (int(first[:-1]), int(last[:-1])),
            (int(first_id), int(last_id)),
            args.accounts,
        )
        with (
            gunicorn("config.wsgi:application", ROOT, env, args.workers, scratch) as platform,
            gunicorn("floor.wsgi:application", FLOOR, floor_env, args.workers, scratch) as floor,
            gunicorn(
                "floor.wsgi:application", FLOOR, floor_cursor_env, args.workers, scratch
            ) as floor_cursor,
        ):
            probe = {"Authorization": f"Token {token}", "X-Forwarded-Proto": "https"}
            assert wait_until_answering(f"{platform}/api/v1/accounts/{first}/", probe) == 200
            assert wait_until_answering(f"{floor}/api/accounts/0000000001/", {}) == 200
            assert wait_until_answering(f"{floor_cursor}/api/accounts/0000000001/", {}) == 200
            require_cursor_pages(floor_cursor)
            servers = {
                "lookup": platform,
                "floor_lookup": floor,
                "list": platform,
                "floor_list_page_7": floor,
                "floor_list_cursor": floor_cursor,
            }
            for connections in CONNECTIONS:
                for name in RUNS:
                    result = run_wrk(servers[name], scripts[name], connections, args.seconds)
                    figures[name][str(connections)] = result
                    print(
                        f"{name:<17} c={connections:<3} {result['rps']:>8.1f} rps  "
                        f"p50 {result['p50_ms']:>7.2f} ms  p99 {result['p99_ms']:>7.2f} ms  "
                        f"non-2xx {result['non_2xx']}",
                        flush=True,
                    )
    if not args.keep:
        drop_database(BENCH_DB)
        drop_database(FLOOR_DB)
    ratios = comparisons(figures)
    print_summary(figures, ratios)
    summary = {
        **figures,
        "comparisons": ratios,
        "target": {
            "connections": int(TARGET_CONNECTIONS),
            "lookup_ratio_at_least": TARGET_RATIO,
            "lookup_p99_ms_at_most": TARGET_P99_MS,
            "met": target_met(figures, ratios),
        },
        "accounts": args.accounts,
        "workers": args.workers,
        "seconds": args.seconds,
        "gunicorn_config": GUNICORN_CONFIG.name,
        "notes": (
            "ratios are the platform's 2xx requests/s over the floor's, measured in the same run; "
            "floor_list_page_7 is the floor as it ships (page 7 with a COUNT of every row), "
            "floor_list_cursor the floor with the platform's cursor pagination "
            f"({FLOOR_CURSOR_SETTINGS})"
        ),
    }
    write_result("api", summary)


if __name__ == "__main__":
    main()
