"""Handing work up the layers.

The apps form layers (tenancy → customers → ledger, metering → gateway_bridge → verification →
billing → collection → console, portal), and a lower one never imports a higher one. Where a
lower stage must start a higher stage's work (readings stored → check them), it sends the higher
stage's Celery task **by name**, after its transaction commits: ``send_task_after_commit(
VALIDATE_READINGS, {"tenant_id": …})``. The names are the public interface between
stages; each is declared once, as a constant in ``TASKS`` below, and a test checks that every
one is a registered task.

Sending by name goes through a signature, so it behaves like ``task.delay``: with a broker the
task goes to the workers; with none (the embedded demo and the tests' eager mode) it runs in
this process, once the transaction has committed.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction

VALIDATE_READINGS = "verification.validate_readings"
EXECUTE_GATEWAY_COMMANDS = "gateway_bridge.execute_gateway_commands"

TASKS = (VALIDATE_READINGS, EXECUTE_GATEWAY_COMMANDS)


def send_task(name: str, kwargs: dict[str, Any], queue: str | None = None) -> None:
    """Start the task called ``name`` now (eagerly in process when there is no broker), on
    ``queue`` or the task's default one."""
    options = {"queue": queue} if queue else {}
    current_app.signature(name, kwargs=kwargs, **options).apply_async()


def send_task_after_commit(name: str, kwargs: dict[str, Any], queue: str | None = None) -> None:
    """Start the task called ``name`` once the current transaction commits (at once outside
    one); a rolled-back transaction starts nothing."""
    transaction.on_commit(lambda: send_task(name, kwargs, queue))
