"""The one base viewset and serializer every endpoint builds on.

``TenantViewSet`` owns what every endpoint must get right: the queryset is the model's
tenant-scoped manager (checked at request time), narrowed to the sites on which the caller
holds a role the permission matrix lists for the action; an object outside that answers 404
like one of another tenant; writes go through the service functions the viewset names, with
the calling principal as the actor. A viewset that must step outside this says so in a method
named ``dangerously_…``.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import django_filters
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, mixins, relations, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.fields import SkipField
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.validators import UniqueValidator

from tenancy.api_plumbing import StrictFilterSet
from tenancy.principal import ALL_SITES, Principal, SiteScope
from tenancy.scoping import PreparedLookup, is_tenant_scoped


def request_site_scope(request: Request | None) -> SiteScope:
    return getattr(request, "site_scope", None) or ALL_SITES


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key in a request body: only ids of the caller's tenant and permitted sites.

    Anything else is answered like an id that does not exist (400), never revealing that the
    object exists elsewhere.
    """

    default_error_messages = {
        "does_not_exist": gettext_lazy("There is no “{pk_value}” to choose here."),
        "incorrect_type": gettext_lazy("Give the id as a whole number."),
    }

    def get_queryset(self) -> models.QuerySet | None:
        queryset = super().get_queryset()
        scope = request_site_scope(self.context.get("request"))
        if queryset is not None and hasattr(queryset, "for_sites"):
            queryset = queryset.for_sites(scope.site_ids_or_none)
        return queryset


# Characters no text of this platform needs and that mislead a reader: control characters
# (tabs and line breaks aside) and the bidirectional overrides and isolates, which make a name
# display other than it is stored ("U+202E" turns "txt.exe" around).
# Line and paragraph separators (U+2028, U+2029) break lines where no one expects it.
_REFUSED = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
_LINE_BREAKS = frozenset("\t\n\r")


def _misleading(text: str, allowed: frozenset[str]) -> bool:
    if text.isprintable():
        return False
    return any(
        char not in allowed
        # A lone surrogate (Cs) is no character at all: JSON's "\ud800" decodes to one, and
        # the database cannot store it.
        and (unicodedata.category(char) in ("Cc", "Cs") or char in _REFUSED)
        for char in text
    )


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers, booleans and objects instead of converting them,
    and control characters (but tabs and line breaks) and bidirectional overrides."""

    default_error_messages = {
        "control": gettext_lazy("Control characters and direction overrides are not allowed."),
    }
    allowed_controls: frozenset[str] = _LINE_BREAKS

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if _misleading(value, self.allowed_controls):
            self.fail("control")
        return value


class StrictLineField(StrictCharField):
    """One line of text (a name, a code, an address): no line breaks or tabs either."""

    allowed_controls = frozenset()


class StrictTextField(StrictCharField):
    """Free text (a description, a note), at most 2,000 characters unless the model says."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)


MAX_ID = 2**63 - 1  # the largest id a bigint column holds


class IdsSerializer(serializers.Serializer):
    """The body of a bulk action: the ids of the objects it acts on (at most 1,000)."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1, max_length=1000
    )


class PeriodField(serializers.RegexField):
    """A billing period, ``YYYY-MM`` (years 2000 to 2099: anything else is a typing error)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "YYYY-MM")
        kwargs.setdefault(
            "error_messages",
            {"invalid": gettext_lazy("A period is YYYY-MM, from 2000-01 to 2099-12.")},
        )
        # [0-9], not \d: \d takes full-width digits (２), which a Chinese input method types.
        super().__init__(r"^20[0-9]{2}-(0[1-9]|1[0-2])$", **kwargs)


# A hundred years: an age beyond it is a typing error (and past what a date can hold).
MAX_AGE_HOURS = 24 * 366 * 100


class AgeFilterSet(StrictFilterSet):
    """Filters of a work list (the verification queue, flagged bills): ``older_than_hours``
    keeps the items waiting at least that long (by ``created_at``)."""

    older_than_hours = django_filters.NumberFilter(
        method="filter_age", min_value=0, max_value=MAX_AGE_HOURS
    )

    def filter_age(self, queryset: models.QuerySet, name: str, value: Decimal) -> models.QuerySet:
        return queryset.filter(created_at__lte=timezone.now() - timedelta(hours=float(value)))


def _copy_field(field: serializers.Field) -> serializers.Field:
    holds_fields = (
        isinstance(field, serializers.BaseSerializer)
        or hasattr(field, "child")
        or (hasattr(field, "child_relation"))
    )
    return copy.deepcopy(field) if holds_fields else copy.copy(field)


# Fields that read the instance and render in DRF's own way, using no parent, context or
# request: what a fixed representation may hold.
_RENDERS_ALONE = (
    serializers.CharField,
    serializers.IntegerField,
    serializers.FloatField,
    serializers.DecimalField,
    serializers.BooleanField,
    serializers.DateField,
    serializers.DateTimeField,
    serializers.TimeField,
    serializers.DurationField,
    serializers.UUIDField,
    serializers.ChoiceField,
    serializers.JSONField,
    serializers.ReadOnlyField,
    relations.PrimaryKeyRelatedField,
)
_NEEDS_CONTEXT = (
    serializers.BaseSerializer,
    serializers.SerializerMethodField,
    serializers.FileField,
    serializers.HiddenField,
    relations.HyperlinkedRelatedField,
    relations.ManyRelatedField,
)


def _renders_alone(field: serializers.Field) -> bool:
    own = all(
        getattr(type(field), method).__module__.startswith("rest_framework.")
        for method in ("get_attribute", "to_representation")
    )
    return (
        own
        and isinstance(field, _RENDERS_ALONE)
        and not isinstance(field, _NEEDS_CONTEXT)
        and getattr(field, "pk_field", None) is None
        and not getattr(field.default, "requires_context", False)
    )


class TenantModelSerializer(serializers.ModelSerializer):
    """Strict strings, scoped foreign keys, and the tenant's unique constraints checked."""

    serializer_related_field = ScopedRelatedField
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictLineField,
        models.TextField: StrictTextField,
    }

    _field_prototypes: ClassVar[dict[type, dict[str, serializers.Field]]] = {}
    fixed_representation: ClassVar[bool] = False
    _shown_fields: ClassVar[dict[type, tuple[tuple[str, serializers.Field], ...]]] = {}

    def get_fields(self) -> dict[str, serializers.Field]:
        """ModelSerializer introspects the model on every instance; build each class's fields
        once and hand every instance its own copies. A plain field is copied shallowly (binding
        sets attributes on the copy only); a field holding other fields (nested serializers,
        many-related fields) is copied deeply, so binding never touches a shared child."""
        prototypes = TenantModelSerializer._field_prototypes.get(type(self))
        if prototypes is None:
            prototypes = super().get_fields()
            TenantModelSerializer._field_prototypes[type(self)] = prototypes
        return {name: _copy_field(field) for name, field in prototypes.items()}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """DRF's representation; with ``fixed_representation``, from fields bound once.

        Making a serializer's fields (a copy of each, bound to it) cost 60 µs of the 85 µs an
        account took to render, on every request. A serializer whose shown fields do not depend
        on the instance, the request or the context (its ``get_fields`` may change what can be
        written, never what is shown) sets ``fixed_representation``: it renders through one set
        of its fields, bound once per class to a serializer with no instance and no context, in
        DRF's own loop (same keys, same order, ``None`` as ``None``). Only fields whose reading
        and rendering are DRF's own and use nothing of their parent or context are allowed; any
        other refuses to start (``ImproperlyConfigured``) instead of rendering differently.
        """
        if not self.fixed_representation:
            return super().to_representation(instance)
        shown = TenantModelSerializer._shown_fields.get(type(self))
        if shown is None:
            shown = tuple(
                (str(field.field_name), field) for field in type(self)(context={})._readable_fields
            )
            if unfit := [name for name, field in shown if not _renders_alone(field)]:
                raise ImproperlyConfigured(
                    f"{type(self).__name__} cannot have a fixed representation: {unfit}"
                )
            TenantModelSerializer._shown_fields[type(self)] = shown
        representation: dict[str, Any] = {}
        for name, field in shown:
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            is_none = (
                attribute.pk if isinstance(attribute, relations.PKOnlyObject) else attribute
            ) is None
            representation[name] = None if is_none else field.to_representation(attribute)
        return representation

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        self.check_tenant_unique_constraints(attrs)
        return attrs

    def check_tenant_unique_constraints(self, attrs: dict[str, Any]) -> None:
        """(tenant, field…) unique constraints, as field errors instead of a database error."""
        model: type[models.Model] = self.Meta.model
        instance = getattr(self, "instance", None)
        for constraint in model._meta.constraints:
            if not isinstance(constraint, models.UniqueConstraint) or constraint.condition:
                continue
            fields = [name for name in constraint.fields if name != "tenant"]
            if "tenant" not in constraint.fields or not fields:
                continue
            if not any(name in attrs for name in fields):
                continue
            values = {
                name: attrs[name] if name in attrs else getattr(instance, name, None)
                for name in fields
            }
            clashes = model._default_manager.filter(**values)
            if instance is not None:
                clashes = clashes.exclude(pk=instance.pk)
            if clashes.exists():
                message = str(UniqueValidator.message)
                if constraint.violation_error_message != constraint.default_violation_error_message:
                    message = str(constraint.violation_error_message)
                raise serializers.ValidationError(
                    {fields[-1]: [serializers.ErrorDetail(message, code="unique")]}
                )


ServiceFn = Callable[..., Any]

# Prepared detail lookups by viewset class and site scope (``TenantViewSet.get_object``). A
# principal limited to some sites brings its own set of site ids; the dict is emptied when it
# reaches this size rather than grow without bound.
_PREPARED_LOOKUPS: dict[tuple[type, frozenset[int] | None], PreparedLookup] = {}
PREPARED_LOOKUPS_KEPT = 512


class TenantViewSet(viewsets.GenericViewSet):
    """Base of every API viewset: tenant and site scoping, the matrix, writes via services."""

    permission_resource: ClassVar[str] = ""
    permission_action: str | None = None
    permission_by_method: bool = False
    lookup_value_regex = r"[0-9]+"
    prepared_detail_lookup: ClassVar[bool] = False

    create_service: ClassVar[ServiceFn | None] = None
    update_service: ClassVar[ServiceFn | None] = None
    delete_service: ClassVar[ServiceFn | None] = None

    @property
    def principal(self) -> Principal:
        return self.request.principal  # type: ignore[attr-defined]  # set by the middleware

    @property
    def site_scope(self) -> SiteScope:
        return request_site_scope(self.request)

    @property
    def tenant_wide(self) -> bool:
        queryset = getattr(self, "queryset", None)
        return queryset is None or queryset.model.site_path is None

    def objects_named_in_body(self) -> list[Any]:
        """The objects a bulk action's body names (``{"ids": [...]}``), found through this
        viewset's scoped queryset; an id it cannot see (another tenant's, another site's, or
        none) refuses the whole request with the ids at fault."""
        body = IdsSerializer(data=self.request.data)
        body.is_valid(raise_exception=True)
        ids = set(body.validated_data["ids"])
        found = list(self.get_queryset().filter(pk__in=ids))
        if unknown := ids - {obj.pk for obj in found}:
            raise exceptions.ValidationError(
                {
                    "ids": [
                        _("Unknown items: %(ids)s") % {"ids": ", ".join(map(str, sorted(unknown)))}
                    ]
                }
            )
        return found

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        if not is_tenant_scoped(queryset):
            raise ImproperlyConfigured(
                f"{type(self).__name__}.queryset must come from a tenant-scoped manager"
            )
        return queryset.for_sites(self.site_scope.site_ids_or_none)  # type: ignore[attr-defined]

    def filter_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        """List filters narrow lists; an object named by its id is found without them."""
        if self.detail:
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self) -> Any:
        """The object named in the URL, through the scoped queryset; 404 when it is not there.

        A viewset that sets ``prepared_detail_lookup`` finds it with a ``PreparedLookup``: the
        same scoped, site-narrowed query compiled once per site scope instead of on every
        request (its lookup field must be unique in the tenant). Set it only where the detail
        queryset depends on nothing but the tenant and the caller's site scope (no request
        parameters, no per-request annotations).
        """
        if not self.prepared_detail_lookup:
            return super().get_object()
        site_ids = self.site_scope.site_ids_or_none
        key = (type(self), site_ids)
        lookup = _PREPARED_LOOKUPS.get(key)
        if lookup is None:
            if len(_PREPARED_LOOKUPS) >= PREPARED_LOOKUPS_KEPT:
                _PREPARED_LOOKUPS.clear()
            queryset = self.filter_queryset(self.get_queryset())
            lookup = _PREPARED_LOOKUPS[key] = PreparedLookup(queryset, self.lookup_field)
        obj = lookup.find(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        if obj is None:
            raise Http404
        self.check_object_permissions(self.request, obj)
        return obj

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        service = type(self).create_service
        if service is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no create_service")
        serializer.instance = service(self.principal, **serializer.validated_data)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        service = type(self).update_service
        if service is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no update_service")
        serializer.instance = service(
            self.principal, serializer.instance, dict(serializer.validated_data)
        )

    def perform_destroy(self, instance: models.Model) -> None:
        service = type(self).delete_service
        if service is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no delete_service")
        service(self.principal, instance)


class TenantSettingsViewSet(TenantViewSet):
    """``GET`` and ``PATCH …/current/``: the tenant's one settings row of ``settings_model``
    (its defaults until the first change: a GET never writes), changed only through
    ``update_service``."""

    settings_model: ClassVar[Any] = None
    tenant_wide = True  # one row for the whole tenant: changing it needs an all-sites grant

    @action(detail=False, methods=["get", "patch"], url_path="current", permission_by_method=True)
    def current(self, request: Request) -> Response:
        settings = self.settings_model.for_tenant(self.principal.tenant)
        if request.method == "GET":
            return Response(self.get_serializer(settings).data)
        body = self.get_serializer(settings, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        with transaction.atomic():  # the row is stored only with a valid change
            settings = self.settings_model.stored_for_tenant(self.principal.tenant)
            settings = type(self).update_service(  # type: ignore[misc]
                self.principal, settings, dict(body.validated_data)
            )
        return Response(self.get_serializer(settings).data)


# TenantViewSet comes first in each base below, so its perform_* (the services) win over DRF's
# mixins, which would save through the serializer and skip the service and its audit event.


class ReadOnlyTenantViewSet(TenantViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    pass


class CreateReadTenantViewSet(ReadOnlyTenantViewSet, mixins.CreateModelMixin):
    pass


class CreateReadUpdateTenantViewSet(
    ReadOnlyTenantViewSet, mixins.CreateModelMixin, mixins.UpdateModelMixin
):
    pass


class CrudTenantViewSet(CreateReadUpdateTenantViewSet, mixins.DestroyModelMixin):
    pass
