"""Periodic jobs: declared by the apps that own them, written into django-celery-beat's tables,
and run in process by the demo.

Each app lists its jobs on its ``AppConfig`` as ``periodic_jobs`` (so no app reaches up or
into ``config`` to name another's tasks); ``manage.py sync_schedules`` writes them all into
django-celery-beat's tables. Production runs ``celery beat`` with the database scheduler. The
embedded demo has no broker, so ``InProcessScheduler`` reads the same table in a thread and
runs each due task in the web process; both honour the same enabled flags, intervals and
last-run times.
"""

from __future__ import annotations

import json
import logging
import threading

from celery import current_app
from django.db import close_old_connections
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from tenancy.periodic import PeriodicJob, periodic_jobs

logger = logging.getLogger(__name__)


def save_periodic_job(job: PeriodicJob) -> PeriodicTask:
    interval, _created = IntervalSchedule.objects.get_or_create(
        every=int(job.every.total_seconds()), period=IntervalSchedule.SECONDS
    )
    task, _created = PeriodicTask.objects.update_or_create(
        name=job.name,
        defaults={
            "task": job.task,
            "interval": interval,
            "kwargs": json.dumps(job.kwargs),
            "queue": job.queue,
            "enabled": True,
        },
    )
    return task


def sync_periodic_jobs() -> list[PeriodicTask]:
    return [save_periodic_job(job) for job in periodic_jobs()]


def run_due_jobs() -> list[str]:
    """Run every enabled job that is due, in this process; returns the names run."""
    ran = []
    for model in PeriodicTask.objects.filter(enabled=True).select_related(
        "interval", "crontab", "solar", "clocked"
    ):
        entry = ModelEntry(model, app=current_app)
        due, _next_in = entry.is_due()
        if not due:
            continue
        try:
            current_app.tasks[entry.task].apply(args=entry.args, kwargs=entry.kwargs, throw=True)
        except Exception:
            logger.exception("periodic job %s failed", entry.name)
        next(entry).save()
        ran.append(entry.name)
    return ran


class InProcessScheduler(threading.Thread):
    def __init__(self, tick_seconds: float = 5.0) -> None:
        super().__init__(name="in-process-scheduler", daemon=True)
        self.tick_seconds = tick_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            close_old_connections()
            try:
                run_due_jobs()
            except Exception:
                logger.exception("in-process scheduler tick failed")
            finally:
                close_old_connections()
            self.stopping.wait(self.tick_seconds)

    def stop(self) -> None:
        self.stopping.set()
