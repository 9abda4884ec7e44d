"""Tenant scoping of querysets, applied when a query runs, not when it is built.

Every tenant-owned model's default manager returns a ``TenantQuerySet`` whose SQL query is a
``TenantScopedQuery``. The filter ``tenant_id = <current tenant>`` is added at the moment the
query is compiled, which is the one place every read goes through: iteration, ``count()``,
``exists()``, aggregates, ``values()``, and use as a subquery inside another query. So:

- a queryset built at import time (``queryset = Account.objects.all()`` on a class) stays
  lazy and picks up the tenant of the request that evaluates it;
- evaluating one with no current tenant raises ``TenantNotSet`` (fail closed);
- ``update()`` and ``delete()`` turn the query into Django's update and delete queries, which
  are not ours, so they apply the filter to the query first;
- a ``PreparedLookup`` (the hottest detail reads) keeps the SQL a scoped query compiled to, the
  tenant filter included, and binds the current tenant's id each time it runs.

The explicitly named ``unscoped`` manager on each model is for system code (migrations,
operator commands, authentication); every use of it is visible in review. Django's base
manager, used to follow foreign keys, stays plain: the object you start from already came
through a scoped query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connections, models
from django.db.models.sql import Query
from django.utils import timezone

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from tenancy.principal import Principal

from tenancy.context import get_current_tenant, reset_current_tenant, set_current_tenant

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


class _SentinelTenant:
    """Stands in for the current tenant while a prepared lookup compiles its SQL."""

    pk = -(2**62) + 7


_TEXT_FIELDS = frozenset({"CharField", "SlugField", "TextField"})
_INTEGER_FIELDS = frozenset(
    {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField"}
)


_VALUE_SENTINELS: dict[type, Any] = {str: "\x00prepared-lookup-value\x00", int: -(2**62) + 11}
_TENANT_SLOT, _VALUE_SLOT = object(), object()


class PreparedLookup:
    """One object of a scoped queryset found by a field unique in the tenant, from SQL compiled
    once instead of on every request.

    Building and compiling a Django query costs more CPU than PostgreSQL takes to answer it: of
    the 0.45 ms an account lookup by number spent in ``QuerySet.get()``, 0.35 ms was Python
    (filter, clone, the tenant filter, SQL compilation, converters). A prepared lookup compiles
    the queryset once, with stand-ins for the tenant id and the looked-up value, remembers where
    they went among the parameters, and ``find`` only binds parameters, runs the SQL and builds
    the instance as ``ModelIterable`` does (the fields' database converters, ``Model.from_db``).

    The tenant filter is the scoped query's own (``TenantScopedQuery`` adds it while compiling,
    as for every read), and ``find`` binds the **current** tenant's id each time: with none set
    it raises ``TenantNotSet``, exactly as evaluating the queryset would (fail closed). A
    queryset that is not tenant-scoped cannot be prepared. Everything else in the queryset
    (the site filter) is compiled in as it was: a caller keys its prepared lookups by whatever
    went into the queryset besides the tenant (``TenantViewSet`` keys them by the site scope).
    """

    def __init__(self, queryset: models.QuerySet, field_name: str) -> None:
        model = queryset.model
        field = model._meta.pk if field_name == "pk" else model._meta.get_field(field_name)
        if field.get_internal_type() not in _TEXT_FIELDS | _INTEGER_FIELDS:
            raise ImproperlyConfigured(f"cannot prepare a lookup by {model.__name__}.{field_name}")
        if not _unique_in_tenant(model, field):
            raise ImproperlyConfigured(f"{model.__name__}.{field_name} is not unique in a tenant")
        if not is_tenant_scoped(queryset):
            raise ImproperlyConfigured(f"{model.__name__}: only a scoped queryset is prepared")
        sentinel = _VALUE_SENTINELS[str if field.get_internal_type() in _TEXT_FIELDS else int]
        probe = queryset.filter(**{field_name: sentinel}).order_by()
        token = set_current_tenant(cast("Any", _SentinelTenant))
        try:
            compiler = probe.query.get_compiler(using=probe.db)
            sql, params = compiler.as_sql()
        finally:
            reset_current_tenant(token)
        slots = [
            _TENANT_SLOT
            if param == _SentinelTenant.pk
            else _VALUE_SLOT
            if param == sentinel
            else param
            for param in params
        ]
        klass_info = compiler.klass_info or {}
        if (
            slots.count(_TENANT_SLOT) != 1
            or slots.count(_VALUE_SLOT) != 1
            or klass_info.get("related_klass_infos")
            or compiler.annotation_col_map
            or klass_info.get("model") is not model
        ):
            raise ImproperlyConfigured(f"{model.__name__}: this queryset cannot be prepared")
        select_fields = klass_info["select_fields"]
        self.model = model
        self.field = field
        self.using = probe.db
        self.sql = sql
        self.slots = slots
        self.start, self.end = select_fields[0], select_fields[-1] + 1
        self.attnames = [
            column[0].target.attname for column in compiler.select[self.start : self.end]
        ]
        self.converters = [
            (position, converters, expression)
            for position, (converters, expression) in compiler.get_converters(
                [column[0] for column in compiler.select[: compiler.col_count]]
            ).items()
        ]

    def find(self, value: Any) -> models.Model | None:
        """The current tenant's object whose field is ``value``, or ``None``. A value the field
        cannot take (letters for an id) finds nothing, as DRF's ``get_object_or_404`` has it."""
        tenant_id = get_current_tenant().pk
        connection = connections[self.using]
        try:
            value = self.field.get_db_prep_value(
                self.field.get_prep_value(value), connection, prepared=True
            )
        except (TypeError, ValueError, ValidationError):
            return None
        params: list[Any] = [
            tenant_id if slot is _TENANT_SLOT else value if slot is _VALUE_SLOT else slot
            for slot in self.slots
        ]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchmany(2)
        if not rows:
            return None
        if len(rows) > 1:
            raise self.model.MultipleObjectsReturned(f"more than one {self.model.__name__}")
        row = rows[0]
        if self.converters:
            row = list(row)
            for position, converters, expression in self.converters:
                converted = row[position]
                for converter in converters:
                    converted = converter(converted, expression, connection)
                row[position] = converted
        return self.model.from_db(self.using, self.attnames, row[self.start : self.end])


def _unique_in_tenant(model: type[models.Model], field: models.Field) -> bool:
    if field.primary_key or field.unique:
        return True
    return any(
        isinstance(constraint, models.UniqueConstraint)
        and constraint.condition is None
        and set(constraint.fields) == {"tenant", field.name}
        for constraint in model._meta.constraints
    )


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
RESOLVED_FIELDS = [
    "state", "resolution", "resolved_at", "resolved_by_kind", "resolved_by_id",
    "resolved_by_label",
]  # fmt: skip


class WorkItem(models.Model):
    """Base of an item on a work list that a person resolves (a suspect reading in the
    verification queue, a flagged bill): closed the same way everywhere, with what was done,
    when and by whom (the actor's kind, id and label, as every write records its actor), so
    reports read the resolver from the item itself. The concrete model has a ``state`` field
    with a ``resolved`` choice."""

    state: str
    resolution = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_kind = models.CharField(max_length=16, blank=True)
    resolved_by_id = models.BigIntegerField(null=True, blank=True)
    resolved_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True

    def resolve(self, actor: Principal, resolution: str) -> None:
        self.state = "resolved"
        self.resolution = resolution
        self.resolved_at = timezone.now()
        self.resolved_by_kind = actor.kind
        self.resolved_by_id = actor.id
        self.resolved_by_label = actor.label[:200]
        self.save(update_fields=RESOLVED_FIELDS)
