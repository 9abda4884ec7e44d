"""Periodic jobs every deployment has. ``manage.py sync_schedules`` writes them into
django-celery-beat's tables, which beat (or the demo's in-process scheduler) reads; per-tenant
and per-site schedules are added there by the services that own them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every: timedelta
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None


PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob(
        name="dispatch polling rounds",
        task="gateway_bridge.dispatch_polling_rounds",
        every=timedelta(minutes=1),
    ),
    PeriodicJob(
        name="validate readings",
        task="billing.validate_all_readings",
        every=timedelta(minutes=5),
    ),
    PeriodicJob(
        name="charge prepaid accounts",
        task="billing.charge_prepaid_due",
        every=timedelta(minutes=5),
    ),
    PeriodicJob(
        name="expire meter commands",
        task="gateway_bridge.expire_meter_commands",
        every=timedelta(minutes=5),
    ),
    PeriodicJob(
        name="clear expired sessions",
        task="tenancy.clear_expired_sessions",
        every=timedelta(hours=24),
    ),
]
