"""Readings in the console: a meter reader's manual reading (validated by the API's serializer
and stored by the same service, then checked like any reading), and the reading completeness
of a slot by site and by gateway, with the meters it did not read."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.access import page, permitted_sites, principal_of, scoped
from console.forms import Field, Form, api_request
from console.pages.meters.common import label_of, meter_url, percent
from console.pages.meters.registry import SERIES_LABELS
from metering import reports, services
from metering.api import ManualReadingSerializer
from metering.meter_profiles import TOU_REGISTERS, ProfileError, get_profile
from metering.models import Gateway, Meter, MeterStatus, Reading, RelayState
from metering.readings import earliest_reading_time
from tenancy.context import get_current_tenant
from verification.models import CheckStatus, ReadingCheck, Rule

# --- a manual reading ----------------------------------------------------------------------------


def reading_fields(meter: Meter) -> list[Field]:
    """The registers the meter's model shows, and its relay if it has one."""
    try:
        profile = get_profile(meter.profile)
    except ProfileError:
        profile = None
    unit = profile.unit if profile is not None else ""
    fields = [
        Field(
            "taken_at",
            _("Read at"),
            kind="datetime-local",
            required=True,
            help=_("When you read the meter, in the site's local time."),
        ),
        Field(
            "total",
            _("Total"),
            kind="number",
            required=True,
            step="0.001",
            help=_("The total register, as the display shows it (%(unit)s).") % {"unit": unit}
            if unit
            else "",
            autofocus=True,
        ),
    ]
    if profile is not None and all(profile.value(name) is not None for name in TOU_REGISTERS):
        fields += [
            Field(name, SERIES_LABELS[name], kind="number", step="0.001") for name in TOU_REGISTERS
        ]
    if profile is not None and profile.relay is not None:
        fields.append(Field("relay_state", _("Relay"), kind="select", choices=RelayState.choices))
    return fields


def check_message(reading: Reading) -> str:
    """What the checks found on a reading just stored, in a sentence."""
    check = ReadingCheck.objects.filter(reading=reading).values_list("status", "rules").first()
    when = timezone.localtime(reading.taken_at).strftime("%Y-%m-%d %H:%M")
    if check is None:
        return gettext("Reading of %(when)s saved; the checks have not run yet.") % {"when": when}
    status, rules = check
    fired = "; ".join(label_of(Rule, rule) for rule in rules.split(",") if rule)
    result = label_of(CheckStatus, status) + (f" ({fired})" if fired else "")
    return gettext("Reading of %(when)s saved. Check: %(result)s.") % {
        "when": when,
        "result": result,
    }


@page("readings", "add")
def new_reading(request: HttpRequest, meter_id: int) -> HttpResponseBase:
    meter = get_object_or_404(
        scoped(request, Meter.objects.select_related("site", "gateway")), pk=meter_id
    )
    now = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    form = Form(
        reading_fields(meter),
        request.POST if request.method == "POST" else None,
        initial={"taken_at": now},
    )
    if form.submitted:
        with form.attempt():
            if meter.status == MeterStatus.REMOVED:
                raise forms.ValidationError(gettext("This meter has been removed."))
            body = ManualReadingSerializer(
                data={**form.cleaned(), "meter": meter.pk},
                context={"request": api_request(request)},
            )
            body.is_valid(raise_exception=True)
            values = dict(body.validated_data)
            values.pop("meter")
            taken_at = values.pop("taken_at")
            principal = principal_of(request)
            assert principal is not None
            try:
                reading = services.record_manual_reading(principal, meter, taken_at, values)
            except IntegrityError:
                form.add_errors(
                    {
                        "taken_at": [
                            gettext(
                                "A reading with other values is already stored for this time; "
                                "it was kept and the difference recorded as a meter event."
                            )
                        ]
                    }
                )
            else:
                messages.success(request, check_message(reading))
                return redirect(meter_url(meter))
    return render(
        request,
        "console/meters/reading_form.html",
        {"meter": meter, "form": form},
        status=400 if form.submitted else 200,
    )


# --- reading completeness ------------------------------------------------------------------------


class SlotForm(forms.Form):
    slot = forms.DateTimeField(
        label=_("Slot"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text=_("Empty: the last slot whose round has finished."),
    )

    def clean_slot(self) -> datetime | None:
        moment = self.cleaned_data.get("slot")
        if moment is None:
            return None
        tenant = get_current_tenant()
        if moment < earliest_reading_time(tenant) or moment > timezone.now():
            raise forms.ValidationError(gettext("Choose a slot between go-live and now."))
        return moment


def _rows(
    rows: list[reports.Completeness], names: dict[int, str], link: Any
) -> list[dict[str, Any]]:
    return [
        {
            "name": names.get(row.key, "—"),
            "meters": row.meters,
            "read": row.read,
            "missing": row.missing,
            "share": percent(row.completeness),
            "state": "ok"
            if row.missing == 0
            else ("warn" if (row.completeness or 0) >= 0.9 else "bad"),
            "unread_url": link(row.key) if row.missing else None,
        }
        for row in rows
    ]


@page("readings", "completeness")
def completeness(request: HttpRequest) -> HttpResponse:
    form = SlotForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    chosen = form.cleaned_data.get("slot") if valid and request.GET else None
    tenant = get_current_tenant()
    slot = reports.chosen_slot(tenant, chosen)
    sites = permitted_sites(request)
    gateways: QuerySet[Gateway] = scoped(
        request, Gateway.objects.filter(is_active=True).select_related("site").order_by("name")
    )
    by_site = reports.completeness_by_site(sites, slot)
    by_gateway = reports.completeness_by_gateway(gateways, slot)
    site_names = {site.pk: str(site.name) for site in sites}
    gateway_names = {gateway.pk: gateway.name for gateway in gateways}
    meters_url = reverse("console:meters")
    last = chosen is None

    def unread(key: str) -> Any:
        def link(pk: int) -> str | None:
            if not last:
                return None  # the meters list knows "not read since the last slot" only
            query = {key: pk, "status": MeterStatus.ACTIVE, "last_read": "slot"}
            return f"{meters_url}?{urlencode(query)}"

        return link

    total_meters = sum(row.meters for row in by_site)
    total_read = sum(row.read for row in by_site)
    return render(
        request,
        "console/meters/completeness.html",
        {
            "form": form,
            "slot": slot,
            "sites": _rows(by_site, site_names, unread("site")),
            # Gateways with meters missing first, then the rest by name.
            "gateways": sorted(
                _rows(by_gateway, gateway_names, unread("gateway")),
                key=lambda row: (-row["missing"], row["name"]),
            ),
            "total_meters": total_meters,
            "total_read": total_read,
            "total_share": percent(reports.ratio(total_read, total_meters)),
            "unread_all_url": f"{meters_url}?status=active&last_read=slot" if last else None,
        },
        status=200 if valid else 400,
    )
