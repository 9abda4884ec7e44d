"""Tasks run inside their tenant; the demo's scheduler runs due periodic jobs from the same
table beat reads."""

from datetime import timedelta

import pytest
from celery import shared_task
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tenancy.context import current_tenant_or_none
from tenancy.models import Site
from tenancy.schedules import run_due_jobs, sync_periodic_jobs
from tests.world import World

pytestmark = pytest.mark.django_db


@shared_task(name="tests.sites_seen")
def sites_seen(tenant_id: int) -> list[int]:
    return sorted(Site.objects.values_list("id", flat=True))


def test_a_task_given_a_tenant_runs_inside_it(world: World) -> None:
    result = sites_seen.apply(kwargs={"tenant_id": world.b.tenant.pk}).get()
    assert result == [site.pk for site in world.b.sites]
    assert current_tenant_or_none() is None


def test_sync_schedules_is_idempotent(world: World) -> None:
    sync_periodic_jobs()
    sync_periodic_jobs()
    assert PeriodicTask.objects.filter(task="tenancy.clear_expired_sessions").count() == 1


def test_the_in_process_scheduler_runs_a_due_job_once(world: World) -> None:
    expired = SessionStore()
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - timedelta(days=1)
    )
    job = next(t for t in sync_periodic_jobs() if t.task == "tenancy.clear_expired_sessions")
    PeriodicTask.objects.filter(pk=job.pk).update(last_run_at=timezone.now() - timedelta(days=2))
    assert "clear expired sessions" in run_due_jobs()
    assert not Session.objects.filter(session_key=expired.session_key).exists()
    assert "clear expired sessions" not in run_due_jobs()
    assert PeriodicTask.objects.get(pk=job.pk).total_run_count == 1
