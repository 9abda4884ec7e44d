"""The rules every counter movement of money passes before it is posted (a deposit taken, a
refund paid in cash): one place, so a rule of the counter is added once.

The cashier's shift (日结) adds its rule here: every counter movement belongs to the cashier's
open shift (``collection.services.shifts.require_open_shift(actor, site_id)``).
"""

from __future__ import annotations

from tenancy.principal import Principal


def counter_checks(actor: Principal, site_id: int) -> None:
    """Refuse a counter movement of money the counter's rules do not allow; call it inside the
    movement's transaction, before anything is posted. No rule yet beyond the callers' own."""
