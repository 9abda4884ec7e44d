"""REST endpoints of the tenancy app: the current tenant, sites, transformer areas, the
calendar, staff, API clients and the audit trail."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tenancy import second_factor, services
from tenancy.api_base import (
    CrudTenantViewSet,
    ReadOnlyTenantViewSet,
    ScopedRelatedField,
    StrictCharField,
    TenantModelSerializer,
    TenantViewSet,
)
from tenancy.api_plumbing import BoundedIsoDateTimeFilter, StrictFilterSet
from tenancy.audit import AuditAction
from tenancy.calendar import is_working_day, next_working_day
from tenancy.models import (
    EARLIEST_CALENDAR_DAY,
    LATEST_CALENDAR_DAY,
    ActorKind,
    ApiClient,
    AuditEvent,
    CalendarDay,
    RoleGrant,
    Site,
    Tenant,
    TransformerArea,
    User,
)
from tenancy.roles import Role

# --- the current tenant ----------------------------------------------------------------------


class TenantSerializer(TenantModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "time_zone",
            "currency",
            "language",
            "payment_term_days",
            "reading_interval_minutes",
            "earliest_reading_on",
            "require_second_factor",
        ]
        read_only_fields = ["id", "slug", "currency"]


class CurrentTenantViewSet(TenantViewSet):
    """The caller's own tenant: its name, time zone, language and payment term."""

    permission_resource = "tenant"
    serializer_class = TenantSerializer
    tenant_wide = True

    @extend_schema(methods=["GET"], responses=TenantSerializer)
    @extend_schema(methods=["PATCH"], request=TenantSerializer, responses=TenantSerializer)
    @action(detail=False, methods=["get", "patch"], url_path="me", permission_by_method=True)
    def me(self, request: Request) -> Response:
        tenant = self.principal.tenant
        assert tenant is not None
        if request.method == "GET":
            return Response(self.get_serializer(tenant).data)
        serializer = self.get_serializer(tenant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tenant = services.update_tenant(self.principal, tenant, dict(serializer.validated_data))
        return Response(self.get_serializer(tenant).data)


# --- sites and transformer areas -------------------------------------------------------------


class SiteSerializer(TenantModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "code", "name", "address", "reading_day", "is_active"]


class SiteViewSet(CrudTenantViewSet):
    """Properties and supply stations; a site in use (areas, premises, accounts) is not deleted."""

    permission_resource = "sites"
    queryset = Site.objects.order_by("id")
    serializer_class = SiteSerializer
    filterset_fields = ["is_active", "code"]
    create_service = services.create_site
    update_service = services.update_site
    delete_service = services.delete_site

    @property
    def tenant_wide(self) -> bool:
        """A new site is outside every site list, so creating one needs an all-sites grant."""
        return self.action == "create"


class TransformerAreaSerializer(TenantModelSerializer):
    class Meta:
        model = TransformerArea
        fields = ["id", "site", "code", "name", "capacity_kva"]


class TransformerAreaViewSet(CrudTenantViewSet):
    """台区: the customers fed by one transformer."""

    permission_resource = "transformer_areas"
    queryset = TransformerArea.objects.order_by("id")
    serializer_class = TransformerAreaSerializer
    filterset_fields = ["site", "code"]
    create_service = services.create_transformer_area
    update_service = services.update_transformer_area
    delete_service = services.delete_transformer_area


# --- calendar ----------------------------------------------------------------------------------


class CalendarDaySerializer(TenantModelSerializer):
    class Meta:
        model = CalendarDay
        fields = ["id", "date", "kind", "name"]


class CalendarDayFilter(StrictFilterSet):
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = CalendarDay
        fields = ["kind"]


class WorkingDayQuery(serializers.Serializer):
    date = serializers.DateField()

    def validate_date(self, value: datetime.date) -> datetime.date:
        if not EARLIEST_CALENDAR_DAY <= value <= LATEST_CALENDAR_DAY:
            raise serializers.ValidationError(
                _("The calendar covers %(first)s to %(last)s.")
                % {"first": EARLIEST_CALENDAR_DAY, "last": LATEST_CALENDAR_DAY}
            )
        return value


class CalendarDayViewSet(CrudTenantViewSet):
    """Public holidays and make-up working days (调休) that move the weekly pattern."""

    permission_resource = "calendar"
    queryset = CalendarDay.objects.order_by("date")
    serializer_class = CalendarDaySerializer
    filterset_class = CalendarDayFilter
    create_service = services.create_calendar_day
    update_service = services.update_calendar_day
    delete_service = services.delete_calendar_day

    @extend_schema(
        parameters=[OpenApiParameter("date", OpenApiTypes.DATE, required=True)],
        responses=inline_serializer(
            "NextWorkingDay",
            {
                "date": serializers.DateField(),
                "is_working_day": serializers.BooleanField(),
                "next_working_day": serializers.DateField(),
            },
        ),
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="next-working-day",
        permission_action="view",
        filter_backends=[],
        pagination_class=None,
    )
    def next_working_day(self, request: Request) -> Response:
        """The first working day on or after ``date`` (due dates move to it)."""
        query = WorkingDayQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data["date"]
        tenant = self.principal.tenant
        assert tenant is not None
        return Response(
            {
                "date": day,
                "is_working_day": is_working_day(tenant, day),
                "next_working_day": next_working_day(tenant, day),
            }
        )


# --- role grants, staff, API clients ----------------------------------------------------------


class GrantSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    site = ScopedRelatedField(
        queryset=Site.objects.all(),
        allow_null=True,
        required=False,
        default=None,
        help_text=_("The site the role is held for; null for every site."),
    )

    def to_representation(self, instance: RoleGrant) -> dict[str, Any]:
        return {"role": instance.role, "site": instance.site_id}

    def to_internal_value(self, data: Any) -> services.GrantSpec:
        values = super().to_internal_value(data)
        return services.GrantSpec(role=values["role"], site=values.get("site"))


class StaffSerializer(TenantModelSerializer):
    grants = GrantSerializer(many=True)
    password = StrictCharField(write_only=True, max_length=128, style={"input_type": "password"})

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "display_name",
            "email",
            "is_active",
            "last_login",
            "grants",
            "password",
        ]
        read_only_fields = ["id", "last_login"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is None:
            fields["is_active"].read_only = True
        else:
            fields["username"].read_only = True
            fields["password"].read_only = True
        return fields


class PasswordSerializer(serializers.Serializer):
    password = StrictCharField(max_length=128, style={"input_type": "password"})


class StaffViewSet(CrudTenantViewSet):
    """Staff users of this tenant with their roles; DELETE deactivates (history keeps them)."""

    permission_resource = "staff"
    queryset = User.tenant_staff.prefetch_related("grants").order_by("id")
    serializer_class = StaffSerializer
    filterset_fields = ["is_active", "username"]
    create_service = services.create_staff
    update_service = services.update_staff
    delete_service = services.deactivate_staff

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"], permission_action="unlock")
    def unlock(self, request: Request, pk: str | None = None) -> Response:
        """Lift the lockout that repeated wrong passwords put on this user."""
        services.unlock_staff(self.principal, self.get_object())
        return Response(status=204)

    @extend_schema(request=None, responses={204: None})
    @action(
        detail=True,
        methods=["post"],
        url_path="reset-second-factor",
        permission_action="reset_second_factor",
    )
    def reset_second_factor(self, request: Request, pk: str | None = None) -> Response:
        """Forget this user's authenticator app and recovery codes (a lost phone): they set up
        a new app at their next sign-in."""
        second_factor.reset_second_factor(self.principal, self.get_object())
        return Response(status=204)

    @extend_schema(request=PasswordSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="set-password", permission_action="change")
    def set_password(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        body = PasswordSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.set_staff_password(self.principal, user, body.validated_data["password"])
        return Response(status=204)


class ApiClientSerializer(TenantModelSerializer):
    grants = GrantSerializer(many=True)
    token = serializers.SerializerMethodField(
        help_text=_("Shown once, in the answer that issues it.")
    )

    class Meta:
        model = ApiClient
        fields = [
            "id",
            "name",
            "key_prefix",
            "is_active",
            "created_at",
            "last_used_at",
            "revoked_at",
            "grants",
            "token",
        ]
        read_only_fields = [
            "id",
            "key_prefix",
            "is_active",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_token(self, client: ApiClient) -> str | None:
        return getattr(client, "issued_token", None)


class ApiClientViewSet(CrudTenantViewSet):
    """Integrations calling with a token; DELETE revokes the token."""

    permission_resource = "api_clients"
    queryset = ApiClient.objects.prefetch_related("grants").order_by("id")
    serializer_class = ApiClientSerializer
    filterset_fields = ["is_active"]
    update_service = services.update_api_client
    delete_service = services.revoke_api_client

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        client, token = services.issue_api_client(self.principal, **serializer.validated_data)
        client.issued_token = token  # type: ignore[attr-defined]  # shown once by the serializer
        serializer.instance = client

    @extend_schema(
        request=None,
        responses=inline_serializer("RotatedToken", {"token": serializers.CharField()}),
    )
    @action(detail=True, methods=["post"], url_path="rotate-token", permission_action="rotate")
    def rotate_token(self, request: Request, pk: str | None = None) -> Response:
        """A new token; the old one stops working at once."""
        token = services.rotate_api_client_token(self.principal, self.get_object())
        return Response({"token": token})


# --- audit trail -----------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "site_id",
            "actor_kind",
            "actor_id",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_ids",
            "before",
            "after",
            "request_id",
            "ip",
        ]
        read_only_fields = fields


class AuditEventFilter(StrictFilterSet):
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    actor_kind = django_filters.ChoiceFilter(choices=ActorKind.choices)
    since = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor_kind", "actor_id", "object_type", "object_id", "request_id"]


class AuditEventViewSet(ReadOnlyTenantViewSet):
    """The append-only audit trail, newest first. There is no way to change or delete it."""

    permission_resource = "audit_events"
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
