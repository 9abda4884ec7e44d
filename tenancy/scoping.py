"""Tenant scoping of querysets, applied when a query runs, not when it is built.

Every tenant-owned model's default manager returns a ``TenantQuerySet`` whose SQL query is a
``TenantScopedQuery``. The filter ``tenant_id = <current tenant>`` is added at the moment the
query is compiled, which is the one place every read goes through: iteration, ``count()``,
``exists()``, aggregates, ``values()``, and use as a subquery inside another query. So:

- a queryset built at import time (``queryset = Account.objects.all()`` on a class) stays
  lazy and picks up the tenant of the request that evaluates it;
- evaluating one with no current tenant raises ``TenantNotSet`` (fail closed);
- ``update()`` and ``delete()`` turn the query into Django's update and delete queries, which
  are not ours, so they apply the filter to the query first.

The explicitly named ``unscoped`` manager on each model is for system code (migrations,
operator commands, authentication); every use of it is visible in review. Django's base
manager, used to follow foreign keys, stays plain: the object you start from already came
through a scoped query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.db import models
from django.db.models.sql import Query
from django.utils import timezone

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

from tenancy.context import get_current_tenant

_M = TypeVar("_M", bound=models.Model)


class TenantScopedQuery(Query):
    tenant_filter_pending = True

    def get_compiler(
        self,
        using: str | None = None,
        connection: BaseDatabaseWrapper | None = None,
        elide_empty: bool = True,
    ) -> SQLCompiler:
        if self.tenant_filter_pending:
            return self.with_tenant_filter().get_compiler(using, connection, elide_empty)
        return super().get_compiler(using, connection, elide_empty)

    def with_tenant_filter(self) -> TenantScopedQuery:
        tenant_id = get_current_tenant().pk
        scoped = cast(TenantScopedQuery, self.clone())  # clone() keeps the class
        scoped.tenant_filter_pending = False
        scoped.add_q(models.Q(tenant_id=tenant_id))
        return scoped


class TenantQuerySet(models.QuerySet[_M]):
    _query: Query

    def __init__(
        self,
        model: type[models.Model] | None = None,
        query: Query | None = None,
        using: str | None = None,
        hints: dict[str, models.Model] | None = None,
    ) -> None:
        super().__init__(model, query or TenantScopedQuery(model), using, hints)

    def _scope_now(self) -> None:
        if isinstance(self._query, TenantScopedQuery) and self._query.tenant_filter_pending:
            self._query = self._query.with_tenant_filter()

    def update(self, **kwargs: Any) -> int:
        self._scope_now()
        return super().update(**kwargs)

    def _update(self, values: list[tuple[models.Field[Any, Any], Any, Any]]) -> int:
        self._scope_now()
        return super()._update(values)  # type: ignore[misc]  # private, not in django-stubs

    def delete(self) -> tuple[int, dict[str, int]]:
        self._scope_now()
        return super().delete()

    def _raw_delete(self, using: str | None) -> int:
        self._scope_now()
        return super()._raw_delete(using)

    def for_sites(self, site_ids: frozenset[int] | None) -> TenantQuerySet[_M]:
        """Limit to the given sites (``None`` means every site of the tenant)."""
        site_path = self.model.site_path  # type: ignore[attr-defined]  # set on each model
        if site_ids is None or site_path is None:
            return self
        return self.filter(**{f"{site_path}__in": site_ids})


# The default manager of a tenant-owned model: scoped to the current tenant. Made by
# ``from_queryset`` at module level, so django-stubs types it per model (``Account.objects``
# returns ``TenantQuerySet[Account]``).
TenantManager = models.Manager.from_queryset(TenantQuerySet)


def is_tenant_scoped(queryset: models.QuerySet) -> bool:
    return isinstance(queryset.query, TenantScopedQuery)


class TenantOwned(models.Model):
    """Base of every tenant-owned model.

    ``site_path`` names the lookup from the model to its site (``"site"``,
    ``"customer__site"``), or ``None`` for tenant-wide rows; staff whose grant lists sites see
    only the rows of those sites.
    """

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")

    site_path: str | None = None

    objects = TenantManager()
    dangerously_unscoped = models.Manager()  # noqa: DJ012 (objects must stay first: it is the default)

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.tenant_id is None:
            self.tenant = get_current_tenant()
        super().save(*args, **kwargs)


class TenantSettings(models.Model):
    """Base of a tenant's one row of settings for an app (verification thresholds, billing
    rules). The row is written on the first change; until then a read gets the defaults as an
    unsaved row, so reading settings (a GET, a task) never writes."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True

    @classmethod
    def for_tenant(cls, tenant: Any) -> Any:
        """The tenant's settings to read: the stored row, or the defaults (unsaved)."""
        return cls._default_manager.filter(tenant=tenant).first() or cls(tenant=tenant)

    @classmethod
    def stored_for_tenant(cls, tenant: Any) -> Any:
        """The tenant's settings row to change, written with the defaults if there is none."""
        settings, _created = cls._default_manager.get_or_create(tenant=tenant)
        return settings


# What resolving a work item writes (``state`` is the concrete model's field).
RESOLVED_FIELDS = ["state", "resolution", "resolved_at", "resolved_by_label"]


class WorkItem(models.Model):
    """Base of an item on a work list that a person resolves (a suspect reading in the
    verification queue, a flagged bill): closed the same way everywhere, with what was done,
    when and by whom. The concrete model has a ``state`` field with a ``resolved`` choice."""

    state: str
    resolution = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True

    def resolve(self, actor_label: str, resolution: str) -> None:
        self.state = "resolved"
        self.resolution = resolution
        self.resolved_at = timezone.now()
        self.resolved_by_label = actor_label[:200]
        self.save(update_fields=RESOLVED_FIELDS)
