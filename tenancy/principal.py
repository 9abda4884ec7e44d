"""Who is acting: a staff user, an API client, a bank client, a customer, or the system.

Every request and task acts as one principal inside one tenant. The principal carries the
role grants (role, site or all sites) that the permission matrix is checked against, and the
id and label that audit events record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from tenancy.models import ActorKind, ApiClient, RoleGrant, Tenant, User


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
        return tuple(RoleGrant.unscoped.filter(**holder).values_list("role", "site_id"))

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
