"""``make bench``: run every benchmark module in bench/ in turn (``python -m bench.NAME``)."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["api", "polling", "validation", "billing", "pages", "payments"]


def main() -> None:
    failed = []
    for name in BENCHMARKS:
        print(f"== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode:
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
