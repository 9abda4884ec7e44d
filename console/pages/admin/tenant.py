"""The tenant's own settings, its calendar (public holidays and make-up working days, 调休),
and its sites with their transformer areas (台区)."""

from __future__ import annotations

import zoneinfo
from datetime import date

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from console.access import page, scoped
from console.forms import Field, Form
from console.lists import Column, Listing
from console.pages.admin._shared import actor
from console.pages.customers._common import edit_payload, may, require_on, validated
from tenancy import services
from tenancy.api import (
    CalendarDaySerializer,
    SiteSerializer,
    TenantSerializer,
    TransformerAreaSerializer,
)
from tenancy.models import (
    EARLIEST_CALENDAR_DAY,
    LATEST_CALENDAR_DAY,
    READING_INTERVALS,
    CalendarDay,
    CalendarDayKind,
    Language,
    Site,
    TransformerArea,
)

# --- settings ---------------------------------------------------------------------------------


def _settings_fields() -> list[Field]:
    zones = sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone)
    return [
        Field("name", _("Name"), required=True),
        Field("time_zone", _("Time zone"), kind="select", required=True,
              choices=[(zone, zone) for zone in zones],
              help=_("Billing days, quiet hours and the times on every page are in it.")),
        Field("language", _("Language"), kind="select", required=True, choices=Language.choices),
        Field("payment_term_days", _("Payment term (days)"), kind="number", step="1",
              required=True),
        Field("reading_interval_minutes", _("Reading interval (minutes)"), kind="select",
              required=True, choices=[(m, str(m)) for m in READING_INTERVALS]),
        Field("earliest_reading_on", _("Earliest reading day"), kind="date",
              help=_("Readings for slots before this day are refused.")),
        Field("require_second_factor", _("Second factor at sign-in"), kind="checkbox",
              help=_("Staff who approve or correct money, and tenant administrators, sign in "
                     "with a one-time code from an authenticator app.")),
    ]  # fmt: skip


@page("tenant")
def tenant_settings(request: HttpRequest) -> HttpResponseBase:
    tenant = actor(request).tenant
    assert tenant is not None
    initial = {
        name: getattr(tenant, name)
        for name in ("name", "time_zone", "language", "payment_term_days",
                     "reading_interval_minutes", "require_second_factor")
    }  # fmt: skip
    initial["earliest_reading_on"] = (
        tenant.earliest_reading_on.isoformat() if tenant.earliest_reading_on else ""
    )
    may_change = may(request, "tenant", "change", None)
    form = Form(_settings_fields(), request.POST or None, initial=initial)
    if form.submitted:
        require_on(request, "tenant", "change", None)
        with form.attempt():
            payload = edit_payload(form, null_blank={"earliest_reading_on"})
            changes = validated(TenantSerializer, request, payload, instance=tenant, partial=True)
            services.update_tenant(actor(request), tenant, changes)
        if form.ok:
            messages.success(request, gettext("Saved."))
            return redirect(reverse("console:tenant-settings"))
    return render(
        request,
        "console/admin/settings.html",
        {"form": form, "tenant": tenant, "can_change": may_change},
        status=200 if form.ok else 400,
    )


# --- calendar ---------------------------------------------------------------------------------


def _calendar_fields() -> list[Field]:
    return [
        Field("date", _("Day"), kind="date", required=True),
        Field("kind", _("Kind"), kind="select", required=True, choices=CalendarDayKind.choices),
        Field("name", _("Name"), help=_("E.g. 春节 or 国庆节调休.")),
    ]


@page("calendar")
def calendar(request: HttpRequest) -> HttpResponseBase:
    """One year of the calendar (``?year=``), and the form that adds a day (POST)."""
    tenant = actor(request).tenant
    assert tenant is not None
    asked = request.GET.get("year", "")
    year = int(asked) if asked.isdigit() else tenant.local_today().year
    status = 200
    if not EARLIEST_CALENDAR_DAY.year <= year <= LATEST_CALENDAR_DAY.year:
        year, status = tenant.local_today().year, 400
        messages.error(request, gettext("The calendar covers the years 2000 to 2099."))
    form = Form(_calendar_fields(), request.POST or None, initial={"date": f"{year}-01-01"})
    if form.submitted:
        require_on(request, "calendar", "add", None)
        with form.attempt():
            day = services.create_calendar_day(
                actor(request), **validated(CalendarDaySerializer, request, form.cleaned())
            )
        if form.ok:
            messages.success(request, gettext("%(day)s was added.") % {"day": day})
            return redirect(f"{reverse('console:calendar')}?year={day.date.year}")
        status = 400
    days = CalendarDay.objects.filter(date__gte=date(year, 1, 1), date__lte=date(year, 12, 31))
    return render(
        request,
        "console/admin/calendar.html",
        {
            "days": list(days.order_by("date")),
            "year": year,
            "previous_year": year - 1 if year > EARLIEST_CALENDAR_DAY.year else None,
            "next_year": year + 1 if year < LATEST_CALENDAR_DAY.year else None,
            "form": form,
            "can_add": may(request, "calendar", "add", None),
            "can_delete": may(request, "calendar", "delete", None),
        },
        status=status,
    )


@page("calendar", "delete")
def calendar_day_delete(request: HttpRequest, day_id: int) -> HttpResponseBase:
    day = get_object_or_404(CalendarDay.objects.all(), pk=day_id)
    require_on(request, "calendar", "delete", None)
    back = f"{reverse('console:calendar')}?year={day.date.year}"
    if request.method == "POST":
        services.delete_calendar_day(actor(request), day)
        messages.success(request, gettext("%(day)s was deleted.") % {"day": day})
        return redirect(back)
    working = day.kind == CalendarDayKind.WORKDAY
    return render(
        request,
        "console/confirm.html",
        {
            "title": gettext("Delete %(day)s") % {"day": day},
            "consequences": [
                gettext(
                    "The day follows the weekly pattern again: a working day from Monday to "
                    "Friday, a day off at the weekend."
                )
                if not working
                else gettext("The weekend day is a day off again."),
                gettext(
                    "Due dates and protected hours computed from now on use the changed "
                    "calendar; those already set stay."
                ),
            ],
            "form": Form([]),
            "action_url": request.path,
            "cancel_url": back,
            "confirm_label": gettext("Delete"),
        },
    )


# --- sites and transformer areas -------------------------------------------------------------


def _site_url(site: Site) -> str:
    return reverse("console:site", args=[site.pk])


SITE_COLUMNS = [
    Column("code", pgettext_lazy("site or area code", "Code"), link=_site_url),
    Column("name", _("Name")),
    Column("address", _("Address")),
    Column("reading_day", _("Reading day"), numeric=True),
    Column("is_active", _("Active")),
]


def _site_fields() -> list[Field]:
    return [
        Field("code", pgettext_lazy("site or area code", "Code"), required=True, autofocus=True),
        Field("name", _("Name"), required=True),
        Field("address", _("Address")),
        Field("reading_day", _("Scheduled reading day"), kind="number", step="1",
              help=_("Day of the month on which the billing period closes (1–28).")),
        Field("is_active", _("Active"), kind="checkbox"),
    ]  # fmt: skip


def _area_fields() -> list[Field]:
    return [
        Field("code", pgettext_lazy("site or area code", "Code"), required=True),
        Field("name", _("Name"), required=True),
        Field("capacity_kva", _("Capacity (kVA)"), kind="number", step="0.1"),
    ]


@page("sites")
def site_list(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, Site.objects.all()),
        columns=SITE_COLUMNS,
        default_sort="id",
        export_name="sites",
    )
    if listing.wants_export:
        return listing.export()
    return render(
        request,
        "console/admin/sites.html",
        {"listing": listing, "can_add": may(request, "sites", "add", None)},
    )


def _form_page(
    request: HttpRequest, form: Form, title: str, cancel_url: str, label: str
) -> HttpResponse:
    return render(
        request,
        "console/customers/form.html",
        {"form": form, "title": title, "cancel_url": cancel_url, "submit_label": label},
        status=200 if form.ok else 400,
    )


@page("sites", "add")
def site_new(request: HttpRequest) -> HttpResponseBase:
    require_on(request, "sites", "add", None)  # a new site is outside every site list
    form = Form(_site_fields(), request.POST or None, initial={"reading_day": 1, "is_active": True})
    if form.submitted:
        with form.attempt():
            site = services.create_site(
                actor(request), **validated(SiteSerializer, request, form.cleaned())
            )
        if form.ok:
            messages.success(request, gettext("Saved."))
            return redirect(_site_url(site))
    return _form_page(
        request, form, gettext("New site"), reverse("console:sites"), gettext("Create")
    )


@page("sites")
def site_page(request: HttpRequest, site_id: int) -> HttpResponseBase:
    """A site with its transformer areas; the form adds an area (POST)."""
    site = get_object_or_404(scoped(request, Site.objects.all()), pk=site_id)
    form = Form(_area_fields(), request.POST or None)
    if form.submitted:
        require_on(request, "transformer_areas", "add", site.pk)
        with form.attempt():
            data = {**form.cleaned(), "site": site.pk}
            services.create_transformer_area(
                actor(request), **validated(TransformerAreaSerializer, request, data)
            )
        if form.ok:
            messages.success(request, gettext("Saved."))
            return redirect(_site_url(site))
    return render(
        request,
        "console/admin/site.html",
        {
            "site": site,
            "areas": list(TransformerArea.objects.filter(site=site).order_by("code")),
            "form": form,
            "can_change": may(request, "sites", "change", site.pk),
            "can_add_area": may(request, "transformer_areas", "add", site.pk),
            "can_change_area": may(request, "transformer_areas", "change", site.pk),
        },
        status=200 if form.ok else 400,
    )


@page("sites", "change")
def site_edit(request: HttpRequest, site_id: int) -> HttpResponseBase:
    site = get_object_or_404(scoped(request, Site.objects.all()), pk=site_id)
    initial = {
        name: getattr(site, name)
        for name in ("code", "name", "address", "reading_day", "is_active")
    }
    form = Form(_site_fields(), request.POST or None, initial=initial)
    if form.submitted:
        with form.attempt():
            payload = edit_payload(form, keep_blank={"address"})
            changes = validated(SiteSerializer, request, payload, instance=site, partial=True)
            services.update_site(actor(request), site, changes)
        if form.ok:
            messages.success(request, gettext("Saved."))
            return redirect(_site_url(site))
    return _form_page(
        request, form, gettext("Edit %(site)s") % {"site": site}, _site_url(site), gettext("Save")
    )


@page("transformer_areas", "change")
def area_edit(request: HttpRequest, area_id: int) -> HttpResponseBase:
    area = get_object_or_404(scoped(request, TransformerArea.objects.all()), pk=area_id)
    initial = {
        "code": area.code,
        "name": area.name,
        "capacity_kva": area.capacity_kva if area.capacity_kva is not None else "",
    }
    form = Form(_area_fields(), request.POST or None, initial=initial)
    if form.submitted:
        with form.attempt():
            payload = edit_payload(form, null_blank={"capacity_kva"})
            changes = validated(
                TransformerAreaSerializer, request, payload, instance=area, partial=True
            )
            services.update_transformer_area(actor(request), area, changes)
        if form.ok:
            messages.success(request, gettext("Saved."))
            return redirect(reverse("console:site", args=[area.site_id]))
    back = reverse("console:site", args=[area.site_id])
    return _form_page(
        request, form, gettext("Edit %(area)s") % {"area": area}, back, gettext("Save")
    )
