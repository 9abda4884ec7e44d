"""Corrections: verifiers' edits and estimates, each beside the reading it stands in for, with
who proposed it. Four eyes: the service refuses the proposer's own approval; the page says so
and offers the proposer no approve button."""

from __future__ import annotations

import django_filters
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from console.access import can, page, principal_of, scoped
from console.forms import Field, Form, api_request
from console.lists import Column, Listing, listing_response
from console.pages.verification.common import SiteFilterSet, registers
from metering.models import Meter
from tenancy.principal import Principal
from verification import services
from verification.api import MissingSlotSerializer, RejectSerializer
from verification.models import (
    REQUESTABLE_ESTIMATES,
    CorrectionKind,
    CorrectionState,
    ReadingCorrection,
    VerificationItem,
)


class CorrectionFilter(SiteFilterSet):
    state = django_filters.ChoiceFilter(label=_("State"), choices=CorrectionState.choices)
    kind = django_filters.ChoiceFilter(label=_("Kind"), choices=CorrectionKind.choices)

    class Meta:
        model = ReadingCorrection
        fields: list[str] = []


def _correction_url(correction: ReadingCorrection) -> str:
    return reverse("console:correction", args=[correction.pk])


COLUMNS = [
    Column("meter.serial_number", _("Meter"), link=_correction_url),
    Column("site.name", _("Site")),
    Column("taken_at", _("Slot")),
    Column("get_kind_display", _("Kind")),
    Column("get_method_display", _("Method")),
    Column("reading.total", _("As read (kWh)"), numeric=True),
    Column("total", _("Proposed (kWh)"), numeric=True),
    Column("reason", _("Reason")),
    Column("created_by_label", _("Proposed by")),
    Column("get_state_display", _("State")),
    Column("approved_by_label", _("Approved by")),
    Column("created_at", _("Proposed at"), sort="id"),
]


def _actor(request: HttpRequest) -> Principal:
    principal = principal_of(request)
    assert principal is not None  # @page let in only staff of a tenant
    return principal


@page("corrections")
def correction_list(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, ReadingCorrection.objects.select_related("meter", "site", "reading")),
        columns=COLUMNS,
        filterset=CorrectionFilter,
        export_name="corrections",
    )
    return listing_response(request, "console/verification/corrections.html", {"listing": listing})


def _correction(request: HttpRequest, correction_id: int) -> ReadingCorrection:
    return get_object_or_404(
        scoped(request, ReadingCorrection.objects.select_related("meter", "site", "reading")),
        pk=correction_id,
    )


def proposed_by(actor: Principal, correction: ReadingCorrection) -> bool:
    return correction.created_by_kind == actor.kind and correction.created_by_id == actor.id


def _detail(
    request: HttpRequest, correction: ReadingCorrection, errors: list[str], status: int = 200
) -> HttpResponse:
    return render(
        request,
        "console/verification/correction.html",
        {
            "correction": correction,
            "original": registers(correction.reading) if correction.reading else [],
            "proposal": registers(correction),
            "item": VerificationItem.objects.filter(correction=correction).first(),
            "is_proposer": proposed_by(_actor(request), correction),
            "can_decide": correction.state == CorrectionState.PROPOSED
            and can(request, "corrections", "approve"),
            "errors": errors,
        },
        status=status,
    )


@page("corrections")
def correction_detail(request: HttpRequest, correction_id: int) -> HttpResponse:
    return _detail(request, _correction(request, correction_id), [])


@page("corrections", "approve")
def approve_correction(request: HttpRequest, correction_id: int) -> HttpResponse:
    """A second verifier approves: the corrected value counts from now on."""
    correction = _correction(request, correction_id)
    if request.method != "POST":
        return redirect("console:correction", correction.pk)
    try:
        services.approve_correction(_actor(request), correction)
    except ValidationError as exc:
        return _detail(request, correction, list(exc.messages), status=400)
    messages.success(request, _("Correction approved: the corrected value now counts."))
    return redirect("console:correction", correction.pk)


@page("corrections", "approve")
def reject_correction(request: HttpRequest, correction_id: int) -> HttpResponse:
    """Send a correction back with a reason; its queue item is open again."""
    correction = _correction(request, correction_id)
    form = Form(
        [Field("reason", _("Reason"), kind="textarea", required=True, autofocus=True)],
        request.POST if request.method == "POST" else None,
    )
    if form.submitted:
        with form.attempt():
            body = RejectSerializer(data=form.cleaned())
            body.is_valid(raise_exception=True)
            services.reject_correction(_actor(request), correction, body.validated_data["reason"])
        if form.ok:
            messages.success(
                request, _("Correction rejected: the reading is open in the queue again.")
            )
            return redirect("console:correction", correction.pk)
    return render(
        request,
        "console/confirm.html",
        {
            "title": _("Reject the correction of meter %(serial)s")
            % {"serial": correction.meter.serial_number},
            "consequences": [
                _("The proposed value will not count."),
                _("The suspect reading goes back to the verification queue, open."),
                _("The reason is recorded in the audit trail."),
            ],
            "form": form,
            "action_url": reverse("console:correction-reject", args=[correction.pk]),
            "cancel_url": reverse("console:correction", args=[correction.pk]),
            "confirm_label": _("Reject"),
        },
        status=200 if form.ok else 400,
    )


MISSING_SLOT_FIELDS = [
    Field("meter", _("Meter"), kind="hidden"),
    Field(
        "taken_at",
        _("Slot"),
        kind="datetime-local",
        required=True,
        help=_("In the tenant's time; a period opens and closes at 00:00 of the reading day."),
    ),
    Field("method", _("Method"), kind="select", required=True, choices=REQUESTABLE_ESTIMATES),
    Field("reason", _("Reason"), kind="textarea", required=True),
]


@page("corrections", "add")
def estimate_missing_slot(request: HttpRequest) -> HttpResponse:
    """Estimate a slot no reading arrived for (a period cannot open or close without it); the
    estimate counts once another verifier approves it, and a real reading supersedes it."""
    source = request.POST if request.method == "POST" else request.GET
    meter = get_object_or_404(scoped(request, Meter.objects.all()), pk=_id(source.get("meter")))
    form = Form(
        MISSING_SLOT_FIELDS,
        request.POST if request.method == "POST" else None,
        initial={"meter": meter.pk, "taken_at": request.GET.get("taken_at", "")},
    )
    if form.submitted:
        with form.attempt():
            body = MissingSlotSerializer(
                data=form.cleaned(), context={"request": api_request(request)}
            )
            body.is_valid(raise_exception=True)
            data = body.validated_data
            correction = services.estimate_missing(
                _actor(request), data["meter"], data["taken_at"], data["method"], data["reason"]
            )
        if form.ok:
            messages.success(
                request, _("Estimate proposed. It counts once another verifier approves it.")
            )
            return redirect("console:correction", correction.pk)
    return render(
        request,
        "console/verification/missing_slot.html",
        {"meter": meter, "form": form},
        status=200 if form.ok else 400,
    )


def _id(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


urlpatterns: list[URLPattern] = [
    path("corrections/", correction_list, name="corrections"),
    path("corrections/new/", estimate_missing_slot, name="correction-missing-slot"),
    path("corrections/<int:correction_id>/", correction_detail, name="correction"),
    path("corrections/<int:correction_id>/approve/", approve_correction, name="correction-approve"),
    path("corrections/<int:correction_id>/reject/", reject_correction, name="correction-reject"),
]
