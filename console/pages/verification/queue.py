"""The verification queue: suspect readings waiting for a verifier, oldest first, each with the
rules that flagged it and the readings around it; bulk approval from the keyboard, and for one
reading an edit with a reason or an estimate, which a second verifier then approves."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import django_filters
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from console.access import can, page, principal_of, require, scoped
from console.forms import Field, Form
from console.lists import Column, Listing, display
from console.pages.verification.common import (
    REGISTER_LABELS,
    SiteFilterSet,
    back_to,
    registers,
    rule_labels,
)
from metering.models import ENERGY, Reading
from tenancy.api_base import MAX_AGE_HOURS
from tenancy.principal import Principal
from verification import services
from verification.api import EditSerializer, EstimateSerializer
from verification.models import (
    REQUESTABLE_ESTIMATES,
    ItemState,
    ReadingCheck,
    Rule,
    VerificationItem,
)

CONTEXT_READINGS = 3  # readings shown before and after a suspect one
ENERGY_PLACES = Decimal(1).scaleb(-ENERGY["decimal_places"])


class QueueFilter(SiteFilterSet):
    rule = django_filters.ChoiceFilter(label=_("Rule"), choices=Rule.choices, method="filter_rule")
    state = django_filters.ChoiceFilter(label=_("State"), choices=ItemState.choices)
    older_than_hours = django_filters.NumberFilter(
        label=_("Waiting at least (hours)"),
        method="filter_age",
        min_value=0,
        max_value=MAX_AGE_HOURS,
    )

    class Meta:
        model = VerificationItem
        fields: list[str] = []

    def filter_rule(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # Any of the rules that fired, not only the first (no rule's name is part of another's).
        return queryset.filter(rules__contains=value)

    def filter_age(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(created_at__lte=timezone.now() - timedelta(hours=float(value)))


def _energy(value: Decimal | None) -> Decimal | None:
    """A register from a subquery as its column holds it (SQLite leaves off the places)."""
    return None if value is None else value.quantize(ENERGY_PLACES)


def _neighbour(total: Decimal | None, taken_at: Any) -> str:
    if total is None:
        return "—"
    return f"{display(_energy(total))} ({display(taken_at)})"


def _item_url(item: VerificationItem) -> str:
    return reverse("console:verification-item", args=[item.pk])


COLUMNS = [
    Column("meter.serial_number", _("Meter"), link=_item_url),
    Column("site.name", _("Site")),
    Column("reading.taken_at", _("Slot")),
    Column("reading.total", _("Value (kWh)"), numeric=True),
    Column(
        "consumption",
        _("Consumption since the previous"),
        value=lambda item: _energy(item.consumption),
        numeric=True,
    ),
    Column("rules", _("Flagged by"), value=lambda item: rule_labels(item.rules)),
    Column(
        "previous",
        _("Previous reading"),
        value=lambda item: _neighbour(item.previous_total, item.previous_at),
    ),
    Column("next", _("Next reading"), value=lambda item: _neighbour(item.next_total, item.next_at)),
    Column("created_at", _("Waiting since"), sort="id"),
    Column("get_state_display", _("State")),
]


def _queue(request: HttpRequest) -> QuerySet[VerificationItem]:
    """The items in view with the reading before and after each (one subquery each, so a page
    costs the same queries whatever its length). Resolved items only when asked for."""
    items = scoped(request, VerificationItem.objects.select_related("meter", "site", "reading"))
    if not request.GET.get("state"):
        items = items.exclude(state=ItemState.RESOLVED)
    same_meter = Reading.objects.filter(meter_id=OuterRef("meter_id"))
    before = same_meter.filter(taken_at__lt=OuterRef("reading__taken_at")).order_by("-taken_at")
    after = same_meter.filter(taken_at__gt=OuterRef("reading__taken_at")).order_by("taken_at")
    check = ReadingCheck.objects.filter(reading_id=OuterRef("reading_id"))
    return items.annotate(
        previous_total=Subquery(before.values("total")[:1]),
        previous_at=Subquery(before.values("taken_at")[:1]),
        next_total=Subquery(after.values("total")[:1]),
        next_at=Subquery(after.values("taken_at")[:1]),
        consumption=Subquery(check.values("consumption")[:1]),
    )


def _actor(request: HttpRequest) -> Principal:
    principal = principal_of(request)
    assert principal is not None  # @page let in only staff of a tenant
    return principal


def _approve(request: HttpRequest) -> tuple[int, list[str]]:
    """Approve the items ticked in the form: how many, or the errors (nothing approved)."""
    scope = require(request, "verification", "approve")
    try:
        ids = {int(value) for value in request.POST.getlist("item")}
    except ValueError:
        return 0, [gettext("Choose the readings to approve.")]
    if not ids:
        return 0, [gettext("Choose the readings to approve.")]
    items = list(VerificationItem.objects.for_sites(scope.site_ids_or_none).filter(pk__in=ids))
    if unknown := ids - {item.pk for item in items}:
        return 0, [
            gettext("Unknown items: %(ids)s") % {"ids": ", ".join(map(str, sorted(unknown)))}
        ]
    try:
        approved = services.approve_readings(_actor(request), items)
    except ValidationError as exc:
        return 0, list(exc.messages)
    return len(approved), []


@page("verification")
def verification_queue(request: HttpRequest) -> HttpResponseBase:
    errors: list[str] = []
    if request.method == "POST":
        count, errors = _approve(request)
        if not errors:
            messages.success(
                request,
                ngettext(
                    "Approved %(count)d reading as it was read.",
                    "Approved %(count)d readings as they were read.",
                    count,
                )
                % {"count": count},
            )
            return redirect(back_to(request, request.get_full_path()))
    listing = Listing(
        request,
        _queue(request),
        columns=COLUMNS,
        filterset=QueueFilter,
        default_sort="id",
        export_name="verification-queue",
    )
    if listing.wants_export:
        return listing.export()
    return render(
        request,
        "console/verification/queue.html",
        {
            "listing": listing,
            "errors": errors,
            "can_approve": can(request, "verification", "approve"),
        },
        status=400 if errors or not listing.valid else 200,
    )


def _around(item: VerificationItem) -> list[dict[str, Any]]:
    """The suspect reading among the meter's readings before and after it, with their checks."""
    reading = item.reading
    readings = Reading.objects.filter(meter_id=item.meter_id)
    before = list(readings.filter(taken_at__lt=reading.taken_at).order_by("-taken_at"))
    after = list(readings.filter(taken_at__gt=reading.taken_at).order_by("taken_at"))
    rows = [*reversed(before[:CONTEXT_READINGS]), reading, *after[:CONTEXT_READINGS]]
    checks = {
        check.reading_id: check
        for check in ReadingCheck.objects.filter(reading_id__in=[row.pk for row in rows])
    }
    return [
        {
            "reading": row,
            "this": row.pk == reading.pk,
            "consumption": display(getattr(checks.get(row.pk), "consumption", None)),
            "status": checks[row.pk].get_status_display() if row.pk in checks else _("Not checked"),
            "rules": rule_labels(checks[row.pk].rules) if row.pk in checks else "",
        }
        for row in rows
    ]


def _item(request: HttpRequest, item_id: int) -> VerificationItem:
    return get_object_or_404(
        scoped(request, VerificationItem.objects.select_related("meter", "site", "reading")),
        pk=item_id,
    )


@page("verification")
def verification_item(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _item(request, item_id)
    return render(
        request,
        "console/verification/item.html",
        {
            "item": item,
            "rules": rule_labels(item.rules),
            "registers": registers(item.reading),
            "around": _around(item),
            "can_approve": can(request, "verification", "approve"),
            "can_edit": can(request, "verification", "edit"),
            "can_estimate": can(request, "verification", "estimate"),
        },
    )


EDIT_FIELDS = [
    *(
        Field(name, label, kind="number", step="0.001", required=name == "total")
        for name, label in REGISTER_LABELS.items()
    ),
    Field(
        "reason",
        _("Reason"),
        kind="textarea",
        required=True,
        help=_("Why the reading is wrong and where the corrected value comes from."),
    ),
]


@page("verification", "edit")
def edit_item(request: HttpRequest, item_id: int) -> HttpResponse:
    """Propose corrected registers with a reason; the raw reading stays as it was read."""
    item = _item(request, item_id)
    initial = {name: getattr(item.reading, name) for name in REGISTER_LABELS}
    form = Form(EDIT_FIELDS, request.POST if request.method == "POST" else None, initial=initial)
    if form.submitted:
        with form.attempt():
            body = EditSerializer(data=form.cleaned())
            body.is_valid(raise_exception=True)
            values = dict(body.validated_data)
            reason = values.pop("reason")
            correction = services.edit_reading(_actor(request), item, values, reason)
        if form.ok:
            messages.success(
                request, _("Edit proposed. It counts once another verifier approves it.")
            )
            return redirect("console:correction", correction.pk)
    return render(
        request,
        "console/verification/edit.html",
        {"item": item, "registers": registers(item.reading), "form": form},
        status=200 if form.ok else 400,
    )


@page("verification", "estimate")
def estimate_item(request: HttpRequest, item_id: int) -> HttpResponse:
    """Show the estimate of a method beside the reading it would replace, then propose it."""
    item = _item(request, item_id)
    source = request.POST if request.method == "POST" else request.GET
    method = source.get("method", "")
    form = Form(
        [
            Field("method", _("Method"), kind="hidden"),
            Field("reason", _("Reason"), kind="textarea", required=True),
        ],
        request.POST if request.method == "POST" else None,
        initial={"method": method},
    )
    if form.submitted:
        with form.attempt():
            body = EstimateSerializer(data=form.cleaned())
            body.is_valid(raise_exception=True)
            correction = services.estimate_reading(
                _actor(request), item, body.validated_data["method"], body.validated_data["reason"]
            )
        if form.ok:
            messages.success(
                request, _("Estimate proposed. It counts once another verifier approves it.")
            )
            return redirect("console:correction", correction.pk)
    preview: list[tuple[str, str]] = []
    preview_errors: list[str] = []
    if method:
        try:
            values = services.estimate_values(item.meter, item.reading.taken_at, method)
        except ValidationError as exc:
            preview_errors = list(exc.messages)
        else:
            preview = [
                (str(REGISTER_LABELS[name]), display(value))
                for name, value in values.items()
                if value is not None
            ]
    return render(
        request,
        "console/verification/estimate.html",
        {
            "item": item,
            "registers": registers(item.reading),
            "methods": REQUESTABLE_ESTIMATES,
            "method": method,
            "preview": preview,
            "preview_errors": preview_errors,
            "form": form,
        },
        status=200 if form.ok else 400,
    )


urlpatterns: list[URLPattern] = [
    path("verification/", verification_queue, name="verification-queue"),
    path("verification/<int:item_id>/", verification_item, name="verification-item"),
    path("verification/<int:item_id>/edit/", edit_item, name="verification-edit"),
    path("verification/<int:item_id>/estimate/", estimate_item, name="verification-estimate"),
]
