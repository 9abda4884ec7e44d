"""A real Celery worker on Redis runs a task inside the tenant named in its arguments."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from django.conf import settings

from tests.workers import start_worker
from tests.world import World

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: set REDIS_URL"),
]


@pytest.mark.django_db(transaction=True)
def test_a_worker_sets_the_tenant_before_the_task_runs(world: World) -> None:
    from tests.celery_probe import report_tenant

    queue = f"probe-{uuid.uuid4().hex[:8]}"
    key = f"bars-test:{queue}"
    worker = start_worker(queue, "--include", "tests.celery_probe")
    store = redis.Redis.from_url(settings.REDIS_URL)
    try:
        report_tenant.apply_async(kwargs={"tenant_id": world.b.tenant.pk, "key": key}, queue=queue)
        deadline = time.monotonic() + 60
        raw = None
        while raw is None and time.monotonic() < deadline and worker.poll() is None:
            raw = store.get(key)
            time.sleep(0.2)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
        store.delete(key)
    assert raw is not None, f"the worker did not run the task:\n{output}"
    report = json.loads(raw)
    assert report == {"tenant": "tenant-b", "sites": [s.pk for s in world.b.sites]}
