"""Reading slots: meters are read once per slot, the tenant's reading interval (15 minutes by
default) counted from the epoch in UTC, so every part of the platform (the bridge's rounds,
pushed and manual readings, the completeness figures) agrees on which slot a moment is in."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from tenancy.models import Tenant


def slot_for(moment: datetime, interval_minutes: int) -> datetime:
    """The scheduled slot a moment falls in: the start of its interval, in UTC."""
    seconds = interval_minutes * 60
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def current_slot(tenant: Tenant, now: datetime | None = None) -> datetime:
    """The slot the tenant's meters are being read in now."""
    return slot_for(now or timezone.now(), tenant.reading_interval_minutes)
