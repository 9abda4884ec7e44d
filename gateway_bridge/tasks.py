"""Celery tasks of the bridge: thin wrappers over ``rounds``. Polling runs on the ``polling``
queue (the compose service ``bridge``); every task is safe to run twice (acks late, the slot is
an argument, readings are stored once per meter and slot).

The tasks that poll gateways and execute commands retry, with a growing, jittered delay and a
bound, when a service outside the process fails for a moment: the database connection (lost,
a deadlock, SQLite busy) or the broker that takes the hand-over to validation. A gateway or
meter that does not answer is no such error: the poller retries each Modbus request itself and
records what still fails as a meter event, and the next slot's round reads the meter again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError
from django.db import OperationalError as DatabaseUnavailable
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from gateway_bridge import rounds
from metering import services as metering_services
from metering.models import Gateway
from metering.slots import current_slot
from tenancy.context import get_current_tenant, use_tenant
from tenancy.models import Site, Tenant
from tenancy.principal import Principal

# Transient failures of what the bridge talks to outside this process. Python's own
# ConnectionError and TimeoutError cover a socket error that escapes a library unwrapped.
TRANSIENT_ERRORS = (
    DatabaseUnavailable,
    InterfaceError,
    BrokerUnavailable,
    ConnectionError,
    TimeoutError,
)
# Waits of at most 2, 4, 8, 16 and 32 s (each drawn at random below its bound, so workers that
# failed together do not retry together), then the task fails: about a minute in all.
RETRY_TRANSIENT: dict[str, Any] = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="gateway_bridge.poll_shard", acks_late=True, **RETRY_TRANSIENT)
def poll_shard(tenant_id: int, gateway_ids: list[int], slot: str) -> dict:
    """Poll a shard of gateways concurrently in one event loop and store the round. Safe to run
    twice: the slot is an argument and a reading is stored once per meter and slot, so a second
    run reads only the meters the first did not store."""
    summary = rounds.run_round(get_current_tenant(), gateway_ids, datetime.fromisoformat(slot))
    return summary.__dict__ | {"slot": slot}


@shared_task(name="gateway_bridge.poll_site", acks_late=True)
def poll_site(tenant_id: int, site_id: int, slot: str | None = None) -> int:
    """Dispatch a site's round for a slot (the current one by default), once per slot, in
    shards of gateways; returns the number of shards sent. Safe to run twice: the first run
    claims the round (one ``RoundDispatch`` per tenant, site and slot), a second sends nothing."""
    tenant = get_current_tenant()
    site = Site.objects.get(pk=site_id)
    moment = datetime.fromisoformat(slot) if slot else current_slot(tenant)
    gateway_ids = list(
        Gateway.objects.filter(site=site, is_active=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if not gateway_ids or not rounds.claim_round(site, moment, len(gateway_ids)):
        return 0
    parts = rounds.shards(gateway_ids, settings.BARS_POLL_SHARD_SIZE)
    for part in parts:
        poll_shard.apply_async(
            kwargs={"tenant_id": tenant_id, "gateway_ids": part, "slot": moment.isoformat()},
            queue="polling",
        )
    return len(parts)


@shared_task(name="gateway_bridge.dispatch_polling_rounds")
def dispatch_polling_rounds() -> int:
    """Every minute: start each site's round for its tenant's current slot, if not started.
    Safe to run twice: each site's round is claimed once per slot (``poll_site``)."""
    started = 0
    for tenant in Tenant.objects.filter(is_active=True):
        with use_tenant(tenant):
            for site_id in Site.objects.filter(is_active=True).values_list("id", flat=True):
                started += poll_site.apply(
                    kwargs={"tenant_id": tenant.pk, "site_id": site_id}, throw=True
                ).get()
    return started


@shared_task(name="gateway_bridge.execute_gateway_commands", acks_late=True, **RETRY_TRANSIENT)
def execute_gateway_commands(tenant_id: int, gateway_id: int) -> dict:
    """Send a gateway's open commands now instead of waiting for the next round. Safe to run
    twice: only open commands are sent, each writes a target state and is confirmed by reading
    it back, and an outcome is recorded only for a command still marked sent."""
    summary = rounds.run_commands(get_current_tenant(), gateway_id)
    return summary.__dict__ | {"slot": summary.slot.isoformat()}


@shared_task(name="gateway_bridge.expire_meter_commands")
def expire_meter_commands() -> int:
    """Expire open commands past their lifetime. Safe to run twice: an expired command is no
    longer open, so a second run finds none of them."""
    expired = 0
    for tenant in Tenant.objects.filter(is_active=True):
        with use_tenant(tenant):
            system = Principal.system(tenant, rounds.BRIDGE)
            expired += metering_services.expire_commands(system, timezone.now())
    return expired
