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
from tenancy.context import use_tenant
from tenancy.models import ActorKind, Tenant, User
from tenancy.principal import Principal


def actor_for(tenant: Tenant, kind: str, actor_id: int | None, label: str) -> Principal:
    """The principal a stored actor acts as again (a staff user, else the system)."""
    if kind == ActorKind.STAFF and actor_id:
        user = User.objects.filter(pk=actor_id).first()
        if user is not None:
            return Principal.for_user(user)
    return Principal.system(tenant, label)


def _work(
    stage: str, run_id: int, actor: tuple[str, int | None, str], shard: int, chunk: int
) -> None:
    from billing.runs.services import issue_bill_run, price_bill_run

    run = BillRun.dangerously_unscoped.select_related("tenant").get(pk=run_id)
    with use_tenant(run.tenant):
        principal = actor_for(run.tenant, *actor)
        work = price_bill_run if stage == "price" else issue_bill_run
        work(principal, run_id, shard=shard, chunk=chunk)
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
    process per shard; returns the run when all have finished."""
    connections.close_all()
    context = multiprocessing.get_context("fork")
    stored = (actor.kind, actor.id, actor.label)
    workers = [
        context.Process(target=_work, args=(stage, run.pk, stored, shard, chunk))
        for shard in range(run.shards)
    ]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        time.sleep(0.5)
        if progress is not None:
            progress(BillRun.dangerously_unscoped.get(pk=run.pk))
    failed = [worker.exitcode for worker in workers if worker.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(workers)} workers failed: {failed}")
    return BillRun.dangerously_unscoped.get(pk=run.pk)
