"""Console page: the tenant's billing settings (VAT rates and tax codes, bill checks, the
prepaid charging interval, the go-live date): seen by the roles the matrix lists, changed by an
administrator through the API's serializer and the service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from billing.api import BillingSettingsSerializer
from billing.models import BillingSettings
from billing.tariffs import services as tariff_services
from console.access import page
from console.forms import Field, Form, api_request
from console.pages.billing.common import actor, may_write_tenant_wide, require_tenant_wide

FIELDS = [
    ("vat_rate_electricity", "number", "0.0001"),
    ("vat_rate_water", "number", "0.0001"),
    ("tax_code_electricity", "text", None),
    ("tax_code_water", "text", None),
    ("history_factor", "number", "0.01"),
    ("history_bills", "number", "1"),
    ("prepaid_charge_interval_minutes", "number", "1"),
    ("go_live_on", "date", None),
]


def _form(data: Any, settings: BillingSettings) -> Form:
    fields = []
    for name, kind, step in FIELDS:
        model_field = BillingSettings._meta.get_field(name)
        fields.append(
            Field(
                name,
                model_field.verbose_name,  # type: ignore[union-attr]
                kind=kind,
                step=step,
                help=model_field.help_text,  # type: ignore[union-attr]
                required=name != "go_live_on",
            )
        )
    initial = {
        name: "" if getattr(settings, name) is None else getattr(settings, name)
        for name, _kind, _step in FIELDS
    }
    if settings.go_live_on:
        initial["go_live_on"] = settings.go_live_on.isoformat()
    return Form(fields, data, initial=initial)


@page("billing_settings")
def billing_settings(request: HttpRequest) -> HttpResponse:
    principal = actor(request)
    assert principal.tenant is not None  # @page let staff of a tenant in
    current = BillingSettings.for_tenant(principal.tenant)
    may_change = may_write_tenant_wide(request, "billing_settings", "change")
    form = _form(request.POST if request.method == "POST" else None, current)
    if request.method == "POST":
        require_tenant_wide(request, "billing_settings", "change")
        with form.attempt():
            values = {name: form.value(name) for name, _kind, _step in FIELDS}
            values["go_live_on"] = values["go_live_on"] or None
            body = BillingSettingsSerializer(
                current, data=values, partial=True, context={"request": api_request(request)}
            )
            body.is_valid(raise_exception=True)
            with transaction.atomic():  # the row is stored only with a valid change
                stored = BillingSettings.stored_for_tenant(principal.tenant)
                tariff_services.update_billing_settings(
                    principal, stored, dict(body.validated_data)
                )
        if form.ok:
            messages.success(request, _("Billing settings saved."))
            return redirect("console:billing-settings")
    return render(
        request,
        "console/billing/settings.html",
        {"settings": current, "form": form, "may_change": may_change, "fields": form.bound},
        status=200 if form.ok else 400,
    )
