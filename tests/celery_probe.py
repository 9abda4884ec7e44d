"""A task for the worker test only: it reports, into Redis, the tenant it ran in and the
sites its scoped query saw. Loaded into the test's worker with ``--include``."""

import json
import os

import redis
from celery import shared_task

from tenancy.context import get_current_tenant
from tenancy.models import Site


@shared_task(name="tests.report_tenant")
def report_tenant(tenant_id: int, key: str) -> None:
    tenant = get_current_tenant()
    report = {"tenant": tenant.slug, "sites": sorted(Site.objects.values_list("id", flat=True))}
    redis.Redis.from_url(os.environ["REDIS_URL"]).set(key, json.dumps(report), ex=300)
