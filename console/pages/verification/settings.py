"""The verification settings: the thresholds of the validation rules and the expected line
loss. Staff who may view them read them; a tenant administrator (all sites) changes them,
validated by the API's serializer and written by the same service (audited)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from console.access import page, principal_of, scope_for
from console.forms import Field, Form, api_request
from verification import services
from verification.api import VerificationSettingsSerializer
from verification.models import VerificationSettings

FIELD_NAMES = [
    "spike_factor",
    "spike_min_consumption",
    "history_readings",
    "tou_tolerance",
    "zero_power_threshold",
    "future_tolerance_minutes",
    "gap_hours",
    "closing_window_hours",
    "expected_line_loss",
]


def _fields() -> list[Field]:
    fields = []
    for name in FIELD_NAMES:
        model_field: Any = VerificationSettings._meta.get_field(name)
        places = getattr(model_field, "decimal_places", None)
        fields.append(
            Field(
                name,
                str(model_field.verbose_name).capitalize(),
                kind="number",
                required=True,
                help=model_field.help_text,
                step=str(Decimal(1).scaleb(-places)) if places else "1",
            )
        )
    return fields


def may_change(request: HttpRequest) -> bool:
    """Settings belong to the whole tenant: changing them needs the role on all sites."""
    return scope_for(request, "verification_settings", "change").all_sites


@page("verification_settings")
def verification_settings(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    assert principal is not None and principal.tenant is not None  # @page
    current = VerificationSettings.for_tenant(principal.tenant)
    initial = {name: getattr(current, name) for name in FIELD_NAMES}
    form = Form(_fields(), request.POST if request.method == "POST" else None, initial=initial)
    if form.submitted:
        if not may_change(request):
            raise PermissionDenied
        with form.attempt():
            body = VerificationSettingsSerializer(
                current,
                data=form.cleaned(),
                partial=True,
                context={"request": api_request(request)},
            )
            body.is_valid(raise_exception=True)
            with transaction.atomic():  # the row is stored only with a valid change
                stored = VerificationSettings.stored_for_tenant(principal.tenant)
                services.update_verification_settings(principal, stored, dict(body.validated_data))
        if form.ok:
            messages.success(request, _("Verification settings saved."))
            return redirect("console:verification-settings")
    return render(
        request,
        "console/verification/settings.html",
        {"form": form, "may_change": may_change(request), "current": form.bound},
        status=200 if form.ok else 400,
    )


urlpatterns: list[URLPattern] = [
    path("verification-settings/", verification_settings, name="verification-settings"),
]
