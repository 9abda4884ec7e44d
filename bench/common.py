"""Shared pieces of the benchmarks: where results go, the floors, PostgreSQL, wrk."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BASELINES = Path(os.environ.get("BARS_BASELINES", ROOT.parent / "shared" / "baselines"))
PG_ADMIN_DSN = os.environ.get("BARS_BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def write_result(name: str, figures: dict[str, Any]) -> None:
    """Write the figures to bench/results/NAME.json and print them as the last line."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(figures, ensure_ascii=False), flush=True)


def require_free_disk(gigabytes: float, path: Path = ROOT) -> None:
    free = shutil.disk_usage(path).free / 1e9
    if free < gigabytes:
        raise SystemExit(f"needs {gigabytes:.1f} GB free disk at {path}, has {free:.1f} GB")


def recreate_database(name: str) -> str:
    """A fresh PostgreSQL database for one benchmark; returns its URL."""
    for command in (["dropdb", "--if-exists", "--force"], ["createdb"]):
        subprocess.run(
            [*command, "-h", "127.0.0.1", "-U", "postgres", name], check=True, capture_output=True
        )
    return f"{PG_ADMIN_DSN}/{name}"


def drop_database(name: str) -> None:
    subprocess.run(
        ["dropdb", "--if-exists", "--force", "-h", "127.0.0.1", "-U", "postgres", name],
        check=True,
        capture_output=True,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(url: str, headers: dict[str, str], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback http)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    url: str, script: Path, connections: int, seconds: int, threads: int = 2
) -> dict[str, float]:
    """wrk's figures, counting only 2xx answers: rps, p50_ms, p99_ms."""
    output = subprocess.run(
        [
            "wrk",
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*timeout (\d+)", output)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    bad = int(failed.group(1)) if failed else 0
    latency = {pct: float(value) * _UNIT_MS[unit] for pct, value, unit in _LATENCY.findall(output)}
    return {
        "p50_ms": round(latency["50"], 2),
        "p99_ms": round(latency["99"], 2),
        "rps": round(rps * (total - bad) / total, 1) if total else 0.0,
        "requests": total,
        "non_2xx": bad,
        "timeouts": int(socket_errors.group(1)) if socket_errors else 0,
    }


FIELD_KEY = "YmVuY2gtb25seS1maWVsZC1rZXktbm90LWZvci11c2U="


def production_env(database_url: str, redis_url: str | None = None) -> dict[str, str]:
    """Production settings (``DJANGO_DEBUG=0``: no query log, the real security settings)
    with throwaway secrets, for a benchmark's processes; Redis at ``redis_url`` when given (a
    benchmark that empties its broker takes a database of its own), else ``REDIS_URL``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_FIELD_ENCRYPTION_KEY=FIELD_KEY,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        BARS_THROTTLE_PRINCIPAL="100000000/min",
        BARS_LOG_LEVEL="ERROR",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env
