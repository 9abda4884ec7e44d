"""Login lockout: three limits on wrong passwords, so that neither guessing passwords nor
locking other people out works (django-axes records the failures; this handler judges them).

Over the cool-off window (``BARS_LOGIN_LOCKOUT_MINUTES``, 30):

- a user name from one client address: ``BARS_LOGIN_FAILURE_LIMIT`` (5) failures lock that
  pair, not the user name everywhere (anyone could lock ``demo-admin`` out with five requests);
- one client address, whatever the user names: ``BARS_LOGIN_ADDRESS_FAILURE_LIMIT`` (50), well
  above the first, so a counter office behind one NAT address does not lock itself out, while
  one client trying many user names is stopped;
- one user name, from every address: ``BARS_LOGIN_USERNAME_FAILURE_LIMIT`` (20), slower, for
  guessing spread over many addresses.

The client is its address only, never its User-Agent (a fresh User-Agent reset the old lock).
A request refused because of a lock does not count as another failure, so a locked client's
correct password neither extends the lock nor adds to it; a successful login clears the failures
of that user name from that address only (clearing by address would let one valid account wipe
the failures its address ran up against others).
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


def failure_limits() -> tuple[int, int, int]:
    """The limits of the groups of ``AXES_LOCKOUT_PARAMETERS``, in its order: user name and
    address, address, user name."""
    return (
        settings.AXES_FAILURE_LIMIT,
        settings.BARS_LOGIN_ADDRESS_FAILURE_LIMIT,
        settings.BARS_LOGIN_USERNAME_FAILURE_LIMIT,
    )


class LoginLockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """What axes compares with ``AXES_FAILURE_LIMIT``: that limit when any of the three
        limits is reached, else the pair's failures (always below it)."""
        limit = settings.AXES_FAILURE_LIMIT
        groups = self.get_user_attempts(request, credentials)
        counts = [
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in groups
        ]
        # Without a user name axes leaves out the groups that need one; what is left is then
        # held to the first limits (a login with no user name is nobody's typo).
        pairs = zip(counts, failure_limits(), strict=False)
        if any(count >= group_limit for count, group_limit in pairs):
            return limit
        return min(counts[0], limit - 1) if counts else 0

    def reset_user_attempts(self, request: HttpRequest, credentials: Any = None) -> int:
        """On a successful login: the failures of this user name from this address only."""
        pair = self.filter_user_attempts(request, credentials)[0]
        count, _ = pair.delete()
        return count
