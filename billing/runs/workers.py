"""Bill run shards on this machine's cores: each shard priced or issued in a process of its
own, the way Celery workers take one task per shard in production (``start_bill_run``).

Used by ``manage.py bill_run --workers N`` and the benchmark. The processes are forked after the
parent's database connections are closed, so each opens its own.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable

from django.db import connections

from billing.models import BillRun
from tenancy.context import get_current_tenant, use_tenant
from tenancy.models import Tenant
from tenancy.principal import Principal, actor_for


def shard_worker(
    stage: str,
    tenant_id: int,
    run_id: int,
    actor: tuple[str, int | None, str],
    shard: int,
    chunk: int,
) -> None:
    """One worker process: set the tenant it was given, then load the run through the scoped
    manager (a run of another tenant is not found) and price or issue its shard."""
    from billing.runs.services import issue_bill_run, price_bill_run

    try:
        tenant = Tenant.objects.get(pk=tenant_id)
        with use_tenant(tenant):
            run = BillRun.objects.get(pk=run_id)
            principal = actor_for(tenant, *actor)
            work = price_bill_run if stage == "price" else issue_bill_run
            work(principal, run.pk, shard=shard, chunk=chunk)
    finally:
        connections.close_all()


def run_shards(
    stage: str,
    run: BillRun,
    actor: Principal,
    *,
    chunk: int,
    progress: Callable[[BillRun], None] | None = None,
) -> BillRun:
    """Price (``stage="price"``) or issue (``"issue"``) every shard of the run at once, one
    process per shard; returns the run when all have finished. Runs in the current tenant,
    which each worker sets before it touches a row."""
    tenant = get_current_tenant()
    run = BillRun.objects.get(pk=run.pk)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    stored = (actor.kind, actor.id, actor.label)
    workers = [
        context.Process(target=shard_worker, args=(stage, tenant.pk, run.pk, stored, shard, chunk))
        for shard in range(run.shards)
    ]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        time.sleep(0.5)
        if progress is not None:
            progress(BillRun.objects.get(pk=run.pk))
    failed = [worker.exitcode for worker in workers if worker.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(workers)} workers failed: {failed}")
    return BillRun.objects.get(pk=run.pk)
