"""Long work a page watches (a bill run, a period computation): when it last made progress, and
whether it has stalled.

Such work runs as Celery tasks in chunks; each chunk commits its rows and the work's
``progressed_at`` in one transaction. A worker that dies leaves its task unacknowledged, and the
broker delivers it again after its visibility timeout (``BARS_BROKER_VISIBILITY_TIMEOUT``); the
task then resumes after the last committed chunk. Until then nothing moves, so after
``BARS_STALL_MINUTES`` without progress the work counts as stalled: its page says so, stops
polling every two seconds, and offers whoever may start the work to start it again (which
resumes it where it stopped, as a redelivered task would).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone


def stall_minutes() -> int:
    """How many minutes work may go without progress before it counts as stalled."""
    return int(settings.BARS_STALL_MINUTES)


def stall_after() -> timedelta:
    return timedelta(minutes=stall_minutes())


def is_stalled(progressed_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether work last moved at ``progressed_at`` has made no progress for longer than the
    stall threshold."""
    if progressed_at is None:
        return False
    return (now or timezone.now()) - progressed_at > stall_after()


def idle_minutes(progressed_at: datetime | None, now: datetime | None = None) -> int:
    """Whole minutes since the work last made progress (what its page says)."""
    if progressed_at is None:
        return 0
    return max(int(((now or timezone.now()) - progressed_at).total_seconds() // 60), 0)
