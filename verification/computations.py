"""A site's period computed in the background: started by a person, run as a task, watched
by its page (accounts done of total) until it ends.

``start_period_computation`` checks the site and period as the synchronous computation does,
records the computation and starts the task once the transaction commits; a computation of
the same site and period still running is returned instead of starting a second. The task
calls ``compute_periods`` with the computation's row as its checkpoint: each chunk commits its
periods with the row's cursor, figures and ``progressed_at``, so a task delivered again after
its worker died (or started again from the page, ``resume_period_computation``) resumes after
the last committed chunk. The outcome (or the error) is recorded once, when it ends.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Account
from tenancy.audit import AuditAction, record_audit
from tenancy.context import get_current_tenant
from tenancy.models import Site
from tenancy.principal import Principal, actor_for
from tenancy.progress import stall_minutes
from verification.models import ComputationState, PeriodComputation
from verification.periods import (
    PeriodError,
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


class _StoredCheckpoint:
    """The computation's row as its checkpoint: the last account computed, the counts, and
    when it last moved (what its page shows, and what says it stalled)."""

    def __init__(self, computation_id: int) -> None:
        self.computation_id = computation_id

    def position(self) -> tuple[int, int, int]:
        return (
            PeriodComputation.objects.filter(pk=self.computation_id)
            .values_list("cursor", "computed", "held_back")
            .get()
        )

    def advance(self, after: int, to: int, computed: int, held_back: int) -> bool:
        # Moved only from where this task found it: a second task that moved first wins.
        moved = PeriodComputation.objects.filter(pk=self.computation_id, cursor=after).update(
            cursor=to,
            computed=computed,
            held_back=held_back,
            done=computed + held_back,
            progressed_at=timezone.now(),
        )
        return moved == 1


def run_period_computation(computation_id: int) -> PeriodComputation:
    """The task's work: compute from the last committed chunk, writing progress with each
    chunk; safe to run again, even beside another task of the same computation (a computation
    that ended is left as it is)."""
    computation = PeriodComputation.objects.select_related("site").get(pk=computation_id)
    if computation.state != ComputationState.RUNNING:
        return computation
    actor = actor_for(
        get_current_tenant(),
        computation.started_by_kind,
        computation.started_by_id,
        computation.started_by_label,
    )
    checkpoint = _StoredCheckpoint(computation.pk)
    try:
        summary = compute_periods(actor, computation.site, computation.period, checkpoint)
    except PeriodError as exc:
        return _finish(computation.pk, ComputationState.FAILED, error=str(exc))
    except Exception:
        logger.exception("period computation %s failed", computation.pk)
        _finish(
            computation.pk, ComputationState.FAILED, error="The computation failed; it is logged."
        )
        raise
    return _finish(computation.pk, ComputationState.DONE, line_losses=summary.line_losses)


def _finish(
    computation_id: int, state: str, *, error: str = "", line_losses: int = 0
) -> PeriodComputation:
    """Record the outcome once: a second task that finishes the same computation leaves the
    first outcome as it is."""
    with transaction.atomic():
        computation = PeriodComputation.objects.select_for_update().get(pk=computation_id)
        if computation.state != ComputationState.RUNNING:
            return computation
        computation.state = state
        computation.error = error[:500]
        computation.line_losses = line_losses
        computation.finished_at = timezone.now()
        computation.save(update_fields=["state", "error", "line_losses", "finished_at"])
    return computation


def resume_period_computation(actor: Principal, computation_id: int) -> PeriodComputation:
    """Start a stalled computation's task again (its worker died, and the broker has not yet
    delivered the task again): it resumes after the last committed chunk. Refused for a
    computation that ended or is still making progress. Restarting counts as progress, so the
    page watches it closely again and does not offer a second restart at once."""
    from verification.tasks import compute_period_task

    with transaction.atomic():
        computation = PeriodComputation.objects.select_for_update().get(pk=computation_id)
        if computation.state != ComputationState.RUNNING:
            raise ValidationError(
                _("Only a running computation is started again; this one has ended."),
                code="not_running",
            )
        if not computation.stalled:
            raise ValidationError(
                _("The computation made progress within the last %(minutes)s minutes; it is "
                  "not stalled.") % {"minutes": stall_minutes()},
                code="not_stalled",
            )  # fmt: skip
        last_progress = computation.progressed_at
        computation.progressed_at = timezone.now()
        computation.save(update_fields=["progressed_at"])
        record_audit(
            actor,
            AuditAction.PERIOD_COMPUTATION_RESUMED,
            computation,
            before={"progressed_at": last_progress},
            after={"period": computation.period, "done": computation.done,
                   "total": computation.total},
        )  # fmt: skip
        transaction.on_commit(
            lambda: compute_period_task.delay(
                tenant_id=computation.tenant_id, computation_id=computation.pk
            )
        )
    return computation
