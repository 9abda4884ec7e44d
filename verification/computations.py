"""A site's period computed in the background: started by a person, run as a task, watched
by its page (accounts done of total) until it ends.

``start_period_computation`` checks the site and period as the synchronous computation does,
records the computation and starts the task once the transaction commits; a computation of
the same site and period still running is returned instead of starting a second. The task
calls ``compute_periods`` with a progress callback that writes the figures after each chunk,
and records the outcome (or the error) when it ends.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from customers.models import Account
from tenancy.context import get_current_tenant
from tenancy.models import Site
from tenancy.principal import Principal, actor_for
from verification.models import ComputationState, PeriodComputation
from verification.periods import (
    PeriodError,
    PeriodSummary,
    compute_periods,
    ensure_ended,
    period_bounds,
)

logger = logging.getLogger(__name__)


def start_period_computation(actor: Principal, site: Site, period: str) -> PeriodComputation:
    from verification.tasks import compute_period_task

    start, end = period_bounds(site, period)
    ensure_ended(site, period)
    with transaction.atomic():
        running = (
            PeriodComputation.objects.select_for_update()
            .filter(site=site, period=period, state=ComputationState.RUNNING)
            .first()
        )
        if running is not None:
            return running
        total = (
            Account.objects.filter(site=site, opened_on__lte=end.date())
            .exclude(closed_on__lt=start.date())
            .count()
        )
        computation = PeriodComputation.objects.create(
            site=site,
            period=period,
            total=total,
            started_by_kind=actor.kind,
            started_by_id=actor.id,
            started_by_label=actor.label[:200],
        )
        transaction.on_commit(
            lambda: compute_period_task.delay(
                tenant_id=site.tenant_id, computation_id=computation.pk
            )
        )
    return computation


def run_period_computation(computation_id: int) -> PeriodComputation:
    """The task's work: compute, writing progress after each chunk; safe to run again (a
    computation that ended is left as it is)."""
    computation = PeriodComputation.objects.select_related("site").get(pk=computation_id)
    if computation.state != ComputationState.RUNNING:
        return computation
    actor = actor_for(
        get_current_tenant(),
        computation.started_by_kind,
        computation.started_by_id,
        computation.started_by_label,
    )

    def progress(summary: PeriodSummary) -> None:
        PeriodComputation.objects.filter(pk=computation.pk).update(
            done=summary.computed + summary.held_back,
            computed=summary.computed,
            held_back=summary.held_back,
        )

    try:
        summary = compute_periods(actor, computation.site, computation.period, progress)
    except PeriodError as exc:
        _finish(computation, ComputationState.FAILED, error=str(exc))
    except Exception:
        logger.exception("period computation %s failed", computation.pk)
        _finish(computation, ComputationState.FAILED, error="The computation failed; it is logged.")
        raise
    else:
        computation.done = summary.computed + summary.held_back
        computation.computed, computation.held_back = summary.computed, summary.held_back
        computation.line_losses = summary.line_losses
        _finish(computation, ComputationState.DONE)
    return computation


def _finish(computation: PeriodComputation, state: str, error: str = "") -> None:
    computation.state = state
    computation.error = error[:500]
    computation.finished_at = timezone.now()
    computation.save()
