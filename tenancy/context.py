"""The current tenant and request, carried in context variables.

Middleware sets them for a web request, ``TenantTask`` for a Celery task, ``use_tenant`` for
commands and tests. Scoped managers read the tenant when a query is evaluated and refuse to
run without one (fail closed).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenancy.models import Tenant


class TenantNotSet(RuntimeError):
    """A tenant-owned table was queried with no current tenant."""


@dataclass(frozen=True)
class RequestMeta:
    request_id: str
    ip: str | None


_current_tenant: contextvars.ContextVar[Tenant | None] = contextvars.ContextVar(
    "current_tenant", default=None
)
_request_meta: contextvars.ContextVar[RequestMeta | None] = contextvars.ContextVar(
    "request_meta", default=None
)


def get_current_tenant() -> Tenant:
    tenant = _current_tenant.get()
    if tenant is None:
        raise TenantNotSet(
            "No current tenant: set one with use_tenant() (business code), or use the model's "
            "dangerously_unscoped manager (system code only)."
        )
    return tenant


def current_tenant_or_none() -> Tenant | None:
    return _current_tenant.get()


def set_current_tenant(tenant: Tenant | None) -> contextvars.Token:
    return _current_tenant.set(tenant)


def reset_current_tenant(token: contextvars.Token) -> None:
    _current_tenant.reset(token)


@contextmanager
def use_tenant(tenant: Tenant) -> Iterator[Tenant]:
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)


def get_request_meta() -> RequestMeta | None:
    return _request_meta.get()


def set_request_meta(meta: RequestMeta | None) -> contextvars.Token:
    return _request_meta.set(meta)


def reset_request_meta(token: contextvars.Token) -> None:
    _request_meta.reset(token)


class RequestMetaLogFilter(logging.Filter):
    """Puts the request id on every log record, so a log line leads to its audit events."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = _request_meta.get()
        record.request_id = meta.request_id if meta else "-"
        return True
