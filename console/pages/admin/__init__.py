"""Console pages: administration. Staff and their role grants, API clients and their tokens,
the tenant's calendar, sites and transformer areas, and the tenant's settings."""

from __future__ import annotations

from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from console.nav import Entry
from console.pages.admin import clients, staff, tenant

NAV = [
    Entry("admin", _("Staff"), "console:staff", "staff"),
    Entry("admin", _("API clients"), "console:api-clients", "api_clients"),
    Entry("admin", _("Calendar"), "console:calendar", "calendar"),
    Entry("admin", _("Sites and transformer areas"), "console:sites", "sites"),
    Entry("admin", _("Tenant settings"), "console:tenant-settings", "tenant"),
]

urlpatterns: list[URLPattern] = [
    path("admin/staff/", staff.staff_list, name="staff"),
    path("admin/staff/new/", staff.staff_new, name="staff-new"),
    path("admin/staff/<int:user_id>/", staff.staff_member, name="staff-member"),
    path("admin/staff/<int:user_id>/profile/", staff.staff_profile, name="staff-profile"),
    path("admin/staff/<int:user_id>/grants/", staff.staff_grant_add, name="staff-grant-add"),
    path(
        "admin/staff/<int:user_id>/grants/<int:grant_id>/remove/",
        staff.staff_grant_remove,
        name="staff-grant-remove",
    ),
    path("admin/staff/<int:user_id>/deactivate/", staff.staff_deactivate, name="staff-deactivate"),
    path("admin/staff/<int:user_id>/unlock/", staff.staff_unlock, name="staff-unlock"),
    path(
        "admin/staff/<int:user_id>/reset-second-factor/",
        staff.staff_reset_second_factor,
        name="staff-reset-second-factor",
    ),
    path("admin/api-clients/", clients.client_list, name="api-clients"),
    path("admin/api-clients/new/", clients.client_new, name="api-client-new"),
    path("admin/api-clients/<int:client_id>/", clients.client_page, name="api-client"),
    path(
        "admin/api-clients/<int:client_id>/rotate/", clients.client_rotate, name="api-client-rotate"
    ),
    path(
        "admin/api-clients/<int:client_id>/revoke/", clients.client_revoke, name="api-client-revoke"
    ),
    path("admin/calendar/", tenant.calendar, name="calendar"),
    path(
        "admin/calendar/<int:day_id>/delete/",
        tenant.calendar_day_delete,
        name="calendar-day-delete",
    ),
    path("admin/sites/", tenant.site_list, name="sites"),
    path("admin/sites/new/", tenant.site_new, name="site-new"),
    path("admin/sites/<int:site_id>/", tenant.site_page, name="site"),
    path("admin/sites/<int:site_id>/edit/", tenant.site_edit, name="site-edit"),
    path("admin/transformer-areas/<int:area_id>/edit/", tenant.area_edit, name="area-edit"),
    path("admin/settings/", tenant.tenant_settings, name="tenant-settings"),
]
