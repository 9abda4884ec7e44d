"""Real concurrency for PostgreSQL tests: threads with their own database connections,
released together by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

from tenancy.context import use_tenant
from tenancy.models import Tenant


def run_together(
    count: int, work: Callable[[int], Any], tenant: Tenant
) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(index)`` in ``count`` threads at once, each in the tenant and on a
    connection of its own; returns the results and the errors."""
    start = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def one(index: int) -> None:
        try:
            with use_tenant(tenant):
                start.wait()
                results.append(work(index))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
