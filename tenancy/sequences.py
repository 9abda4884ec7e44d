"""Gap-free numbers per tenant, taken inside the caller's transaction."""

from __future__ import annotations

from django.db import connection, models

from tenancy.models import Sequence, Tenant


def take_next(tenant: Tenant, name: str) -> int:
    """The next number of the tenant's sequence ``name``, starting at 1.

    The UPDATE locks the counter row until the caller's transaction ends, so concurrent callers
    queue and a rolled-back caller leaves no gap.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("take_next() must run inside transaction.atomic()")
    Sequence.objects.bulk_create(
        [Sequence(tenant=tenant, name=name, next_value=1)], ignore_conflicts=True
    )
    counter = Sequence.objects.filter(tenant=tenant, name=name)
    counter.update(next_value=models.F("next_value") + 1)
    return counter.values_list("next_value", flat=True).get() - 1
