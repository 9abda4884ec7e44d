"""Who is acting: a staff user, an API client, a bank client, a customer, or the system.

Every request and task acts as one principal inside one tenant. The principal carries the
role grants (role, site or all sites) that the permission matrix is checked against, and the
id and label that audit events record.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from django.db import transaction
from django.utils import timezone

from tenancy import fastcache
from tenancy.models import ActorKind, ApiClient, RoleGrant, Tenant, User
from tenancy.throttling import Window
from tenancy.tokens import hash_token


@dataclass(frozen=True)
class SiteScope:
    """The sites an action may touch: all of the tenant's, a list, or none."""

    all_sites: bool
    site_ids: frozenset[int] = frozenset()

    @property
    def allows_any(self) -> bool:
        return self.all_sites or bool(self.site_ids)

    def allows(self, site_id: int | None) -> bool:
        return self.all_sites or (site_id is not None and site_id in self.site_ids)

    @property
    def site_ids_or_none(self) -> frozenset[int] | None:
        """``None`` when every site is allowed, for ``TenantQuerySet.for_sites``."""
        return None if self.all_sites else self.site_ids


NO_SITES = SiteScope(all_sites=False)
ALL_SITES = SiteScope(all_sites=True)


@dataclass(eq=False)
class Principal:
    kind: str
    id: int | None
    label: str
    tenant: Tenant | None
    user: User | None = None
    api_client: ApiClient | None = None
    preloaded_grants: tuple[tuple[str, int | None], ...] | None = field(default=None, repr=False)

    @classmethod
    def for_user(cls, user: User) -> Principal:
        return cls(ActorKind.STAFF, user.pk, user.label, user.tenant, user=user)

    @classmethod
    def for_api_client(
        cls, client: ApiClient, grants: tuple[tuple[str, int | None], ...] | None = None
    ) -> Principal:
        return cls(
            ActorKind.API_CLIENT,
            client.pk,
            client.label,
            client.tenant,
            api_client=client,
            preloaded_grants=grants,
        )

    @classmethod
    def system(cls, tenant: Tenant, label: str) -> Principal:
        """A scheduled job or operator command acting for a tenant; it holds every role."""
        return cls(ActorKind.SYSTEM, None, label, tenant, preloaded_grants=())

    @cached_property
    def grants(self) -> tuple[tuple[str, int | None], ...]:
        if self.preloaded_grants is not None:
            return self.preloaded_grants
        holder = {"user": self.user} if self.user is not None else {"api_client": self.api_client}
        return tuple(RoleGrant.dangerously_unscoped.filter(**holder).values_list("role", "site_id"))

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(role for role, _site in self.grants)

    def site_scope(self, roles: Iterable[str]) -> SiteScope:
        """The sites on which this principal holds at least one of ``roles``."""
        if self.kind == ActorKind.SYSTEM:
            return ALL_SITES
        wanted = frozenset(roles)
        site_ids: set[int] = set()
        for role, site_id in self.grants:
            if role not in wanted:
                continue
            if site_id is None:
                return ALL_SITES
            site_ids.add(site_id)
        return SiteScope(all_sites=False, site_ids=frozenset(site_ids))


# --- API tokens -------------------------------------------------------------------------------
#
# Every integration request starts by finding the client behind its token. The client, its
# tenant and grants are cached under the token's hash for a few minutes; every service that
# changes them (revoke, rotate, new grants, tenant settings) drops the entry when its
# transaction commits, so a revoked token stops working at once in every process. Edits made
# around the services (the operators' admin) reach the cache within the entry's lifetime.

TOKEN_CACHE_SECONDS = 300
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _token_cache_key(key_hash: str) -> str:
    return f"api-token:{key_hash}"


def _row(obj: Any) -> dict[str, Any]:
    values = {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}
    return {
        name: value.isoformat() if isinstance(value, date) else value  # datetimes too
        for name, value in values.items()
    }


def _load_token_entry(key_hash: str) -> dict[str, Any] | None:
    """The client, tenant and grants behind a token hash, in one query when it has grants."""
    grant_rows = list(
        RoleGrant.dangerously_unscoped.select_related("api_client__tenant").filter(
            api_client__key_hash=key_hash
        )
    )
    if grant_rows:
        client = grant_rows[0].api_client
        grants = [[row.role, row.site_id] for row in grant_rows]
    else:
        client = (
            ApiClient.dangerously_unscoped.select_related("tenant")
            .filter(key_hash=key_hash)
            .first()
        )
        grants = []
    if client is None:
        return None
    return {"client": _row(client), "tenant": _row(client.tenant), "grants": grants}


@functools.cache
def _attnames(model: type[Any]) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


def _values(model: type[Any], row: dict[str, Any]) -> tuple[Any, ...]:
    """A cached row's values as the model's fields hold them (datetimes back from text)."""
    return tuple(field.to_python(row[field.attname]) for field in model._meta.concrete_fields)


@dataclass(frozen=True)
class TokenEntry:
    """A cached token entry, decoded: what is stored, the client's and tenant's field values,
    the grants, and whether the token may be used."""

    stored: dict[str, Any]
    client_values: tuple[Any, ...]
    tenant_values: tuple[Any, ...]
    grants: tuple[tuple[str, int | None], ...]

    @classmethod
    def decode(cls, stored: dict[str, Any]) -> TokenEntry:
        return cls(
            stored,
            _values(ApiClient, stored["client"]),
            _values(Tenant, stored["tenant"]),
            tuple((role, site_id) for role, site_id in stored["grants"]),
        )

    @property
    def usable(self) -> bool:
        return bool(self.stored["client"]["is_active"] and self.stored["tenant"]["is_active"])

    @property
    def last_used_at(self) -> datetime | None:
        return self.client_values[_attnames(ApiClient).index("last_used_at")]

    def principal(self) -> Principal:
        """New instances for every request, as if loaded from the database (``from_db``):
        nothing a request does to its client or tenant reaches another request."""
        client = ApiClient.from_db("default", _attnames(ApiClient), self.client_values)
        client.tenant = Tenant.from_db("default", _attnames(Tenant), self.tenant_values)
        return Principal.for_api_client(client, self.grants)


# Decoded entries by their stored text, so each process decodes an entry once, not on every
# request (JSON, then every field's to_python: 40 µs a request). Redis is still asked on every
# request: an entry dropped there (a revoked token) is never found here, because the lookup key
# is the text Redis returned. Emptied when full rather than grow without bound.
_decoded: dict[bytes | str, TokenEntry] = {}
DECODED_ENTRIES_KEPT = 1024


def _decoded_entry(raw: bytes | str) -> TokenEntry:
    entry = _decoded.get(raw)
    if entry is None:
        if len(_decoded) >= DECODED_ENTRIES_KEPT:
            _decoded.clear()
        entry = _decoded[raw] = TokenEntry.decode(json.loads(raw))
    return entry


def principal_for_token(token: str, window: Window | None = None) -> tuple[Principal | None, int]:
    """The active API client holding ``token`` (or ``None``), and, when a throttle ``window``
    is given, how many requests the token has made in it, this one included (else 0)."""
    key_hash = hash_token(token)
    cache_key = _token_cache_key(key_hash)
    if window is None:
        raw, count = fastcache.get_raw(cache_key), 0
    else:
        counter = window.counter("principal", f"token:{key_hash}")
        raw, count = fastcache.get_and_count(cache_key, counter, window.seconds + 1)
    if raw is not None:
        entry = _decoded_entry(raw)
    else:
        stored = _load_token_entry(key_hash)
        if stored is None:
            return None, count
        fastcache.set_json(cache_key, stored, TOKEN_CACHE_SECONDS)
        entry = TokenEntry.decode(stored)
    if not entry.usable:
        return None, count
    now = timezone.now()
    last_used = entry.last_used_at
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        client_id = entry.stored["client"]["id"]
        ApiClient.dangerously_unscoped.filter(pk=client_id).update(last_used_at=now)
        client_row = {**entry.stored["client"], "last_used_at": now.isoformat()}
        stored = {**entry.stored, "client": client_row}
        fastcache.set_json(cache_key, stored, TOKEN_CACHE_SECONDS)
        entry = TokenEntry.decode(stored)
    return entry.principal(), count


def forget_tokens(*key_hashes: str) -> None:
    """Drop cached token entries now and again when the current transaction commits (a request
    that read the old rows in between must not leave them cached)."""
    keys = [_token_cache_key(key_hash) for key_hash in key_hashes]
    fastcache.delete(*keys)
    transaction.on_commit(lambda: fastcache.delete(*keys))


def actor_for(tenant: Tenant, kind: str, actor_id: int | None, label: str) -> Principal:
    """The principal a stored actor acts as again, in a task (a staff user, else the system)."""
    if kind == ActorKind.STAFF and actor_id:
        user = User.objects.filter(pk=actor_id).first()
        if user is not None:
            return Principal.for_user(user)
    return Principal.system(tenant, label)


def staff_roles(user: User) -> set[str]:
    """The roles a member of staff holds on any site, read before the request's tenant is set
    (the second factor's middleware asks it at sign-in)."""
    return set(RoleGrant.dangerously_unscoped.filter(user=user).values_list("role", flat=True))
