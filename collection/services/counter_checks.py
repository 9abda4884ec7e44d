"""The rules every counter movement of money passes before it is posted (a deposit taken, a
refund paid in cash): one place, so a rule of the counter is added once.

Every counter movement belongs to the cashier's open shift (日结) at the account's site: the
shift is locked until the movement commits, so it cannot close meanwhile, and the cash counts
in the shift's expected cash through the cashier's cash-on-hand ledger account; a card
deposit names its shift, whose expected card total counts it.
"""

from __future__ import annotations

from collection.models import Shift
from collection.services.shifts import require_open_shift
from tenancy.principal import Principal


def counter_checks(actor: Principal, site_id: int) -> Shift:
    """Refuse a counter movement of money the counter's rules do not allow; call it inside the
    movement's transaction, before anything is posted (``no_open_shift``, ``shift_site``).
    Returns the open shift the movement belongs to (locked until the transaction ends)."""
    return require_open_shift(actor, site_id)
