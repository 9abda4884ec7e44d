"""Periodic jobs as data. Each app declares its own on its ``AppConfig`` (``periodic_jobs``), so
no app names another's tasks; ``tenancy.schedules`` writes them into django-celery-beat's
tables. This module imports no models: app configs import it while the registry loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every: timedelta
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None


def periodic_jobs() -> list[PeriodicJob]:
    """Every installed app's periodic jobs, in app order."""
    return [
        job for config in apps.get_app_configs() for job in getattr(config, "periodic_jobs", ())
    ]
