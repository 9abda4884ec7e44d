"""REST endpoints of verification: the queue, corrections, period consumption, line loss and
the verification settings."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import django_filters
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from metering.api import RegistersSerializer
from metering.models import Meter
from tenancy.api_base import (
    AgeFilterSet,
    IdsSerializer,
    PeriodField,
    ReadOnlyTenantViewSet,
    ScopedRelatedField,
    StrictCharField,
    TenantModelSerializer,
    TenantSettingsViewSet,
)
from tenancy.models import Site
from verification import services
from verification.models import (
    REQUESTABLE_ESTIMATES,
    EstimateMethod,
    ItemState,
    LineLoss,
    PeriodConsumption,
    ReadingCorrection,
    Rule,
    VerificationItem,
    VerificationSettings,
)
from verification.periods import PeriodError, compute_periods, ensure_ended

if TYPE_CHECKING:
    pass

# --- the verification queue -------------------------------------------------------------------


class VerificationItemSerializer(serializers.ModelSerializer):
    reading = serializers.SerializerMethodField()

    class Meta:
        model = VerificationItem
        fields = [
            "id",
            "site",
            "meter",
            "rule",
            "rules",
            "state",
            "resolution",
            "correction",
            "created_at",
            "resolved_at",
            "resolved_by_label",
            "reading",
        ]
        read_only_fields = fields

    def get_reading(self, item: VerificationItem) -> dict[str, Any] | None:
        reading = item.reading
        check = next(iter(reading.checks.all()), None)
        return {
            "id": reading.pk,
            "taken_at": reading.taken_at,
            "total": str(reading.total),
            "tou": [
                str(v) if v is not None else None
                for v in (reading.tou_spike, reading.tou_peak, reading.tou_flat, reading.tou_valley)
            ],
            "power": str(reading.power) if reading.power is not None else None,
            "consumption": str(check.consumption)
            if check and check.consumption is not None
            else None,
        }


class VerificationItemFilter(AgeFilterSet):
    rule = django_filters.ChoiceFilter(choices=Rule.choices)
    state = django_filters.ChoiceFilter(choices=ItemState.choices)

    class Meta:
        model = VerificationItem
        fields = ["site", "rule", "state", "meter", "older_than_hours"]


class EditSerializer(RegistersSerializer):
    reason = StrictCharField(max_length=300)


class EstimateSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=REQUESTABLE_ESTIMATES)
    reason = StrictCharField(max_length=300)


class VerificationQueueViewSet(ReadOnlyTenantViewSet):
    """What waits for a verifier: suspect readings (open, or with a correction awaiting a second
    verifier). Approve as read, edit with a reason, or replace by an estimate."""

    permission_resource = "verification"
    queryset = VerificationItem.objects.select_related("reading").prefetch_related(
        "reading__checks"
    )
    serializer_class = VerificationItemSerializer
    filterset_class = VerificationItemFilter

    @extend_schema(request=None, responses=VerificationItemSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Accept the reading as it was read."""
        item = self.get_object()
        services.approve_readings(self.principal, [item])
        item.refresh_from_db()
        return Response(self.get_serializer(item).data)

    @extend_schema(
        request=IdsSerializer,
        responses=inline_serializer("BulkApproved", {"approved": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="bulk-approve", permission_action="approve")
    def bulk_approve(self, request: Request) -> Response:
        """Accept many suspect readings at once (one audit event lists them all)."""
        items = self.objects_named_in_body()
        return Response({"approved": len(services.approve_readings(self.principal, items))})

    @extend_schema(request=EditSerializer, responses={201: None})
    @action(detail=True, methods=["post"], permission_action="edit")
    def edit(self, request: Request, pk: str | None = None) -> Response:
        """Corrected registers with a reason; counts once another verifier approves it."""
        item = self.get_object()
        body = EditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        reason = data.pop("reason")
        correction = services.edit_reading(self.principal, item, data, reason)
        return Response(CorrectionSerializer(correction).data, status=201)

    @extend_schema(request=EstimateSerializer, responses={201: None})
    @action(detail=True, methods=["post"], permission_action="estimate")
    def estimate(self, request: Request, pk: str | None = None) -> Response:
        """Replace the reading by an estimate; counts once another verifier approves it."""
        item = self.get_object()
        body = EstimateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        correction = services.estimate_reading(
            self.principal, item, body.validated_data["method"], body.validated_data["reason"]
        )
        return Response(CorrectionSerializer(correction).data, status=201)


# --- corrections ------------------------------------------------------------------------------


class CorrectionSerializer(TenantModelSerializer):
    # Blank for an edit (only estimates have a method): documented as such.
    method = serializers.ChoiceField(
        choices=EstimateMethod.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = ReadingCorrection
        fields = [
            "id",
            "meter",
            "taken_at",
            "reading",
            "kind",
            "method",
            "total",
            "tou_spike",
            "tou_peak",
            "tou_flat",
            "tou_valley",
            "reason",
            "state",
            "created_by_label",
            "approved_by_label",
            "approved_at",
            "superseded_by",
            "created_at",
        ]
        read_only_fields = fields


class MissingSlotSerializer(serializers.Serializer):
    meter = ScopedRelatedField(queryset=Meter.objects.all())
    taken_at = serializers.DateTimeField()
    method = serializers.ChoiceField(choices=REQUESTABLE_ESTIMATES)
    reason = StrictCharField(max_length=300)


class RejectSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=300)


class CorrectionViewSet(ReadOnlyTenantViewSet):
    """Edits and estimates; each counts once a second verifier approves it (four eyes)."""

    permission_resource = "corrections"
    queryset = ReadingCorrection.objects.all()
    serializer_class = CorrectionSerializer
    filterset_fields = ["meter", "state", "kind"]

    @extend_schema(request=MissingSlotSerializer, responses={201: CorrectionSerializer})
    def create(self, request: Request) -> Response:
        """Estimate a slot no reading arrived for."""
        body = MissingSlotSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        correction = services.estimate_missing(
            self.principal, data["meter"], data["taken_at"], data["method"], data["reason"]
        )
        return Response(self.get_serializer(correction).data, status=201)

    @extend_schema(request=None, responses=CorrectionSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve another verifier's edit or estimate."""
        correction = services.approve_correction(self.principal, self.get_object())
        return Response(self.get_serializer(correction).data)

    @extend_schema(request=RejectSerializer, responses=CorrectionSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Send a correction back; its queue item is open again."""
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        correction = services.reject_correction(
            self.principal, self.get_object(), body.validated_data["reason"]
        )
        return Response(self.get_serializer(correction).data)


# --- period consumption and line loss ----------------------------------------------------------


class BoundaryReadingsField(serializers.JSONField):
    """A period's or a bill's opening or closing readings, one per meter: times in the tenant's
    zone like every other time in the API, and the meter's serial number beside its id."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)
        self.serials: dict[Any, str] = {}

    def to_representation(self, value: Any) -> Any:
        entries = [entry for entry in value or [] if isinstance(entry, dict)]
        wanted = {entry["meter"] for entry in entries if isinstance(entry.get("meter"), int)}
        wanted -= set(self.serials)
        if wanted:
            self.serials.update(
                Meter.objects.filter(pk__in=wanted).values_list("pk", "serial_number")
            )
        shown = []
        for entry in entries:
            entry = dict(entry)
            if entry.get("taken_at"):
                moment = datetime.fromisoformat(entry["taken_at"])
                entry["taken_at"] = timezone.localtime(moment).isoformat()
            entry["serial_number"] = self.serials.get(entry.get("meter"), "")
            shown.append(entry)
        return shown


class PeriodSerializer(serializers.ModelSerializer):
    opening = BoundaryReadingsField()
    closing = BoundaryReadingsField()

    class Meta:
        model = PeriodConsumption
        fields = [
            "id",
            "account",
            "site",
            "period",
            "starts_at",
            "ends_at",
            "status",
            "hold_reason",
            "total",
            "tou_spike",
            "tou_peak",
            "tou_flat",
            "tou_valley",
            "reactive_energy",
            "max_demand",
            "estimated",
            "opening",
            "closing",
            "computed_at",
        ]
        read_only_fields = fields


class ComputeSerializer(serializers.Serializer):
    site = ScopedRelatedField(queryset=Site.objects.all())
    period = PeriodField()


class PeriodViewSet(ReadOnlyTenantViewSet):
    """What each account consumed per billing period (the bill's determinants)."""

    permission_resource = "periods"
    queryset = PeriodConsumption.objects.all()
    serializer_class = PeriodSerializer
    filterset_fields = ["site", "period", "status", "account", "estimated"]

    @extend_schema(
        request=ComputeSerializer,
        responses=inline_serializer(
            "PeriodComputed",
            {
                "period": serializers.CharField(),
                "computed": serializers.IntegerField(),
                "held_back": serializers.IntegerField(),
                "held_back_reasons": serializers.DictField(child=serializers.CharField()),
                "line_losses": serializers.IntegerField(),
            },
        ),
    )
    @action(detail=False, methods=["post"], permission_action="compute")
    def compute(self, request: Request) -> Response:
        """Compute (or recompute) a site's period: every account, and its line losses."""
        body = ComputeSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        ensure_ended(body.validated_data["site"], body.validated_data["period"])
        try:
            summary = compute_periods(
                self.principal, body.validated_data["site"], body.validated_data["period"]
            )
        except PeriodError as exc:
            raise exceptions.ValidationError({"period": [str(exc)]}) from exc
        return Response(summary.__dict__)


class LineLossSerializer(serializers.ModelSerializer):
    class Meta:
        model = LineLoss
        fields = [
            "id",
            "transformer_area",
            "site",
            "period",
            "master_consumption",
            "customers_consumption",
            "loss",
            "loss_rate",
            "expected_rate",
            "flagged",
            "note",
            "computed_at",
        ]
        read_only_fields = fields


class LineLossViewSet(ReadOnlyTenantViewSet):
    """台区线损 per transformer area and period, flagged above the tenant's expected rate."""

    permission_resource = "line_losses"
    queryset = LineLoss.objects.all()
    serializer_class = LineLossSerializer
    filterset_fields = ["site", "period", "flagged", "transformer_area"]


# --- settings -------------------------------------------------------------------------------


class VerificationSettingsSerializer(TenantModelSerializer):
    class Meta:
        model = VerificationSettings
        exclude = ["id", "tenant"]


class VerificationSettingsViewSet(TenantSettingsViewSet):
    """The thresholds of the validation rules and the expected line loss."""

    permission_resource = "verification_settings"
    serializer_class = VerificationSettingsSerializer
    settings_model = VerificationSettings
    update_service = services.update_verification_settings
