"""The platform operators' admin. Operators belong to no tenant, so it reads through the
unscoped managers; the audit trail is shown read-only, with no change or delete."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db import models
from django.http import HttpRequest

from tenancy.models import (
    ApiClient,
    AuditEvent,
    CalendarDay,
    RoleGrant,
    Site,
    Tenant,
    TransformerArea,
    User,
)
from tenancy.principal import forget_tokens


class UnscopedAdmin(admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return self.model.dangerously_unscoped.all()


def _forget_client_tokens(clients: models.QuerySet) -> None:
    forget_tokens(*clients.values_list("key_hash", flat=True))


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "currency", "language", "is_active"]

    def save_model(self, request: HttpRequest, obj: Tenant, form: object, change: bool) -> None:
        """A tenant switched off here must refuse its API tokens at once, not when they expire
        from the cache."""
        super().save_model(request, obj, form, change)
        _forget_client_tokens(ApiClient.dangerously_unscoped.filter(tenant=obj))


@admin.register(Site)
class SiteAdmin(UnscopedAdmin):
    list_display = ["code", "name", "tenant", "reading_day", "is_active"]
    list_filter = ["tenant"]


@admin.register(TransformerArea)
class TransformerAreaAdmin(UnscopedAdmin):
    list_display = ["code", "name", "site", "tenant"]
    list_filter = ["tenant"]


@admin.register(CalendarDay)
class CalendarDayAdmin(UnscopedAdmin):
    list_display = ["date", "kind", "name", "tenant"]
    list_filter = ["tenant", "kind"]


class RoleGrantInline(admin.TabularInline):
    model = RoleGrant
    fk_name = "user"
    fields = ["tenant", "role", "site"]
    extra = 0


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    list_display = ["username", "display_name", "tenant", "is_active", "is_superuser"]
    list_filter = ["tenant", "is_active", "is_superuser"]
    fieldsets = (
        *UserAdmin.fieldsets,  # type: ignore[misc]  # set on UserAdmin, optional in the stubs
        ("Tenant", {"fields": ("tenant", "display_name")}),
    )
    inlines = [RoleGrantInline]


@admin.register(ApiClient)
class ApiClientAdmin(UnscopedAdmin):
    list_display = ["name", "tenant", "key_prefix", "is_active", "last_used_at"]
    list_filter = ["tenant", "is_active"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiClient, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _forget_client_tokens(ApiClient.dangerously_unscoped.filter(pk=obj.pk))


@admin.register(AuditEvent)
class AuditEventAdmin(UnscopedAdmin):
    list_display = ["created_at", "tenant", "actor_kind", "actor_label", "action", "object_type"]
    list_filter = ["tenant", "action", "actor_kind"]
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
