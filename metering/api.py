"""REST endpoints of the read stage: gateways and their health, meters (CSV import,
replacement), readings (manual entry, the edge-gateway ingest), meter events, meter commands,
meter profiles and reading completeness."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import django_filters
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from metering import reports, services
from metering.meter_profiles import READING_COLUMNS, all_profiles, get_profile, value_error
from metering.models import (
    Gateway,
    Meter,
    MeterCommand,
    MeterEvent,
    MeterEventKind,
    Reading,
    RelayState,
)
from metering.readings import reading_time_errors
from tenancy.api_base import (
    CreateReadUpdateTenantViewSet,
    CrudTenantViewSet,
    ReadOnlyTenantViewSet,
    StrictCharField,
    TenantModelSerializer,
    TenantViewSet,
)
from tenancy.api_plumbing import (
    BoundedIsoDateTimeFilter,
    ExactJSONField,
    StrictFilterSet,
    StrictJSONParser,
)
from tenancy.models import Site

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO

MAX_INGEST_ITEMS = 5000

# --- gateways and their health -----------------------------------------------------------------


class GatewaySerializer(TenantModelSerializer):
    class Meta:
        model = Gateway
        fields = [
            "id",
            "site",
            "name",
            "host",
            "port",
            "framing",
            "timeout_ms",
            "retries",
            "baud_rate",
            "is_active",
        ]


class HealthQuery(serializers.Serializer):
    hours = serializers.IntegerField(min_value=1, max_value=720, default=24)


class GatewayViewSet(CrudTenantViewSet):
    """Gateways (one RS485 bus each); a gateway with meters is not deleted."""

    permission_resource = "gateways"
    queryset = Gateway.objects.order_by("id")
    serializer_class = GatewaySerializer
    filterset_fields = ["site", "is_active", "framing"]
    create_service = services.create_gateway
    update_service = services.update_gateway
    delete_service = services.delete_gateway

    @extend_schema(
        parameters=[OpenApiParameter("hours", OpenApiTypes.INT, description="window, 1-720")],
        responses=inline_serializer(
            "GatewayHealth",
            {
                "id": serializers.IntegerField(),
                "name": serializers.CharField(),
                "site": serializers.IntegerField(),
                "rounds": serializers.IntegerField(),
                "last_success_at": serializers.DateTimeField(allow_null=True),
                "success_rate": serializers.FloatField(allow_null=True),
                "request_success_rate": serializers.FloatField(allow_null=True),
                "mean_response_ms": serializers.FloatField(allow_null=True),
            },
            many=True,
        ),
    )
    @action(detail=False, methods=["get"], permission_action="health", pagination_class=None)
    def health(self, request: Request) -> Response:
        """Per gateway over the window: rounds, the last round that read a meter, the share of
        meters read, the share of requests answered, and the mean answer time."""
        query = HealthQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        since = timezone.now() - timedelta(hours=query.validated_data["hours"])
        gateways = reports.with_health(self.filter_queryset(self.get_queryset()), since)
        return Response([_health_row(gateway) for gateway in gateways])


def _health_row(gateway: Any) -> dict[str, Any]:
    health = reports.health_of(gateway)
    return {
        "id": gateway.pk,
        "name": gateway.name,
        "site": gateway.site_id,
        "rounds": health.rounds,
        "last_success_at": health.last_success_at,
        "success_rate": health.success_rate,
        "request_success_rate": health.request_success_rate,
        "mean_response_ms": health.mean_response_ms,
    }


# --- meters -----------------------------------------------------------------------------------


class MeterSerializer(TenantModelSerializer):
    profile = serializers.CharField(max_length=40)

    class Meta:
        model = Meter
        fields = [
            "id",
            "serial_number",
            "profile",
            "utility",
            "site",
            "gateway",
            "unit_id",
            "ct_ratio",
            "pt_ratio",
            "wrap_value",
            "account",
            "premise",
            "master_of",
            "installed_on",
            "removed_on",
            "status",
        ]
        read_only_fields = ["id", "removed_on"]
        extra_kwargs = {"utility": {"required": False}}

    def validate_profile(self, value: str) -> str:
        if value not in all_profiles():
            raise serializers.ValidationError(
                _("Unknown meter profile. Known: %(names)s")
                % {"names": ", ".join(sorted(all_profiles()))}
            )
        return value

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:
            fields["serial_number"].read_only = True
            fields["site"].read_only = True
        return fields


class CsvTextParser(BaseParser):
    """A CSV file sent as the body (``Content-Type: text/csv``)."""

    media_type = "text/csv"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            return {"csv": stream.read().decode(encoding)}
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(_("The CSV file is not UTF-8 text.")) from exc


class MeterImportSerializer(serializers.Serializer):
    csv = StrictCharField(trim_whitespace=False, help_text=_("The CSV text, with a header row."))


class RegisterField(serializers.DecimalField):
    """A register's value as the meter shows it: a plain decimal number, at least 0, with at most
    three decimals (16 digits), written out in full (``1e4`` is refused: nobody reads an
    exponent off a meter's display, and a slip of the keyboard must not become a reading)."""

    default_error_messages = {
        "exponent": _("Write the reading out in full, without an exponent: 10000, not 1e4."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 3)
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "e" in data.strip().lower():
            self.fail("exponent")
        return super().to_internal_value(data)


def _register_field(required: bool = False) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=16, decimal_places=3, min_value=0, required=required)


class RegistersSerializer(serializers.Serializer):
    """The energy registers as the meter shows them: the total and the four TOU registers."""

    total = _register_field(required=True)
    tou_spike = _register_field()
    tou_peak = _register_field()
    tou_flat = _register_field()
    tou_valley = _register_field()


class ReplaceSerializer(serializers.Serializer):
    new_serial_number = StrictCharField(max_length=40)
    new_profile = StrictCharField(max_length=40, required=False)
    replaced_at = serializers.DateTimeField()
    final_reading = RegistersSerializer()
    first_reading = RegistersSerializer()
    reason = StrictCharField(max_length=300)


class MeterViewSet(CreateReadUpdateTenantViewSet):
    """The meter registry. A meter is never deleted: it is replaced or marked removed."""

    permission_resource = "meters"
    queryset = Meter.objects.order_by("id")
    serializer_class = MeterSerializer
    parser_classes = [StrictJSONParser, CsvTextParser]
    filterset_fields = ["site", "gateway", "account", "status", "profile", "serial_number"]
    create_service = services.register_meter
    update_service = services.update_meter

    @extend_schema(
        request=MeterImportSerializer,
        responses={201: inline_serializer("MeterImport", {"imported": serializers.IntegerField()})},
    )
    @action(detail=False, methods=["post"], url_path="import", permission_action="import")
    def import_csv(self, request: Request) -> Response:
        """Register meters from CSV (columns: serial_number, profile, site, gateway, unit_id,
        account, ct_ratio, pt_ratio, wrap_value, installed_on, master_of). All or nothing:
        any bad row refuses the file, and the answer lists every bad row by line number."""
        body = MeterImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        meters = services.import_meters_csv(
            self.principal, body.validated_data["csv"], self.site_scope.site_ids_or_none
        )
        return Response({"imported": len(meters), "ids": [m.pk for m in meters]}, status=201)

    @extend_schema(request=ReplaceSerializer, responses={201: MeterSerializer})
    @action(detail=True, methods=["post"], permission_action="replace")
    def replace(self, request: Request, pk: str | None = None) -> Response:
        """Replace this meter: the new one takes its bus address, account and premise; the final
        reading of the old and the first of the new are recorded and linked."""
        meter = self.get_object()
        body = ReplaceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        replacement = services.replace_meter(
            self.principal,
            meter,
            new_serial_number=data["new_serial_number"],
            new_profile=data.get("new_profile"),
            replaced_at=data["replaced_at"],
            final_reading=dict(data["final_reading"]),
            first_reading=dict(data["first_reading"]),
            reason=data["reason"],
        )
        return Response(self.get_serializer(replacement.new_meter).data, status=201)


class MeterProfileAnswer(serializers.Serializer):
    """A meter profile as the API shows it (``metering/profiles/*.json``)."""

    name = serializers.CharField()
    description = serializers.CharField()
    utility = serializers.CharField()
    unit = serializers.CharField()
    wrap = serializers.CharField()
    blocks = serializers.ListField(child=serializers.DictField())
    relay = serializers.DictField(allow_null=True)
    setpoints = serializers.ListField(child=serializers.CharField())


class MeterProfileViewSet(TenantViewSet):
    """Meter models as the platform reads them (the same for every tenant)."""

    permission_resource = "meter_profiles"
    lookup_value_regex = r"[A-Za-z0-9_-]+"
    pagination_class = None
    filter_backends: list[type] = []  # a handful of files: nothing to filter
    tenant_wide = True

    def _describe(self, name: str) -> dict[str, Any]:
        profile = all_profiles()[name]
        return {
            "name": profile.name,
            "description": profile.description,
            "utility": profile.utility,
            "unit": profile.unit,
            "wrap": str(profile.wrap),
            "blocks": [
                {
                    "function": block.function,
                    "address": block.address,
                    "count": block.count,
                    "assumed": block.assumed,
                    "values": [
                        {
                            "name": value.name,
                            "address": value.address,
                            "type": value.type,
                            "word_order": value.word_order,
                            "scale": str(value.scale),
                            "unit": value.unit,
                            "assumed": value.assumed,
                        }
                        for value in block.values
                    ],
                }
                for block in profile.blocks
            ],
            "relay": None
            if profile.relay is None
            else {
                "state_value": profile.relay.state_value,
                "control_address": profile.relay.control.address,
                "assumed": profile.relay.control.assumed,
            },
            "setpoints": [s.name for s in profile.setpoints],
        }

    @extend_schema(responses=MeterProfileAnswer(many=True), operation_id="meter_profiles_list")
    def list(self, request: Request) -> Response:
        return Response([self._describe(name) for name in sorted(all_profiles())])

    @extend_schema(
        responses=MeterProfileAnswer,
        parameters=[
            OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Name")
        ],
    )
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        if pk not in all_profiles():
            raise exceptions.NotFound()
        return Response(self._describe(pk))


# --- readings ---------------------------------------------------------------------------------


class ReadingSerializer(serializers.ModelSerializer):
    # Blank when the meter does not report its relay: documented as such.
    relay_state = serializers.ChoiceField(
        choices=RelayState.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Reading
        fields = [
            "id",
            "meter",
            "taken_at",
            "read_at",
            "source",
            *READING_COLUMNS,
            "relay_state",
            "extra",
            "created_at",
        ]
        read_only_fields = fields


class ManualReadingSerializer(TenantModelSerializer, RegistersSerializer):
    class Meta:
        model = Reading
        fields = [
            "meter",
            "taken_at",
            "total",
            "tou_spike",
            "tou_peak",
            "tou_flat",
            "tou_valley",
            "relay_state",
        ]

    def check_tenant_unique_constraints(self, attrs: dict[str, Any]) -> None:
        """A second reading for the slot is the service's to judge (duplicate or conflict)."""


class ReadingFilter(StrictFilterSet):
    site = django_filters.NumberFilter(field_name="meter__site")
    since = BoundedIsoDateTimeFilter(field_name="taken_at", lookup_expr="gte")
    until = BoundedIsoDateTimeFilter(field_name="taken_at", lookup_expr="lt")

    class Meta:
        model = Reading
        fields = ["meter", "source", "site", "since", "until"]


class IngestItemSerializer(RegistersSerializer):
    meter = StrictCharField(max_length=40, help_text=_("The meter's serial number."))
    taken_at = serializers.DateTimeField(help_text=_("The scheduled slot the reading is for."))
    read_at = serializers.DateTimeField(required=False)
    voltage = serializers.DecimalField(max_digits=12, decimal_places=3, required=False)
    current = serializers.DecimalField(max_digits=12, decimal_places=3, required=False)
    power = serializers.DecimalField(max_digits=12, decimal_places=3, required=False)
    power_factor = serializers.DecimalField(max_digits=12, decimal_places=3, required=False)
    relay_state = serializers.ChoiceField(choices=RelayState.choices, required=False)
    extra = serializers.DictField(
        child=serializers.CharField(max_length=40),
        required=False,
        help_text=_(
            "Values of the meter's profile that have no field of their own (per-phase values, "
            "demand, …), each a number as text."
        ),
    )


class IngestSerializer(serializers.Serializer):
    readings = serializers.ListField(
        child=ExactJSONField(), min_length=1, max_length=MAX_INGEST_ITEMS
    )


IngestResult = inline_serializer(
    "IngestResult",
    {
        "stored": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "conflicts": serializers.IntegerField(),
        "invalid": serializers.IntegerField(),
        "results": inline_serializer(
            "IngestItemResult",
            {
                "index": serializers.IntegerField(),
                "status": serializers.ChoiceField(["stored", "duplicate", "conflict", "invalid"]),
                "errors": serializers.DictField(required=False),
            },
            many=True,
        ),
    },
)


class ReadingViewSet(ReadOnlyTenantViewSet):
    """Raw readings, append-only: they are never changed or deleted. Meter readers enter a
    reading by hand where remote reading failed; edge gateways push batches to ``ingest``."""

    permission_resource = "readings"
    queryset = Reading.objects.all()
    serializer_class = ReadingSerializer
    filterset_class = ReadingFilter

    @extend_schema(request=ManualReadingSerializer, responses={201: ReadingSerializer})
    def create(self, request: Request) -> Response:
        body = ManualReadingSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        meter = data.pop("meter")
        taken_at = data.pop("taken_at")
        reading = services.record_manual_reading(self.principal, meter, taken_at, data)
        return Response(ReadingSerializer(reading).data, status=201)

    @extend_schema(
        request=inline_serializer("IngestBatch", {"readings": IngestItemSerializer(many=True)}),
        responses=IngestResult,
    )
    @action(detail=False, methods=["post"], permission_action="ingest")
    def ingest(self, request: Request) -> Response:
        """A batch pushed by an edge gateway (up to 5,000 readings), identified by meter serial
        number. Idempotent: the same reading again is a duplicate and writes nothing. Each item
        gets its own result; valid items are kept when others are refused."""
        batch = IngestSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        items = self._parse_items(batch.validated_data["readings"])
        results = services.ingest_readings(self.principal, items)
        counts = {status: 0 for status in ("stored", "duplicate", "conflict", "invalid")}
        for result in results:
            counts[result["status"]] += 1
        return Response(
            {
                "stored": counts["stored"],
                "duplicates": counts["duplicate"],
                "conflicts": counts["conflict"],
                "invalid": counts["invalid"],
                "results": results,
            }
        )

    def _parse_items(self, raw_items: list[Any]) -> list[services.IngestItem]:
        serials = {
            item["meter"]
            for item in raw_items
            if isinstance(item, dict)
            and isinstance(item.get("meter"), str)
            and len(item["meter"]) <= 40
            and item["meter"].isprintable()  # a lone surrogate cannot even be looked up
        }
        meters = {
            meter.serial_number: meter
            for meter in Meter.objects.for_sites(self.site_scope.site_ids_or_none).filter(
                serial_number__in=serials
            )
        }
        tenant = self.principal.tenant
        assert tenant is not None
        items = []
        for index, raw in enumerate(raw_items):
            parsed = IngestItemSerializer(data=raw)
            if not parsed.is_valid():
                items.append(services.IngestItem(index, errors=_plain(parsed.errors)))
                continue
            data = dict(parsed.validated_data)
            meter = meters.get(data.pop("meter"))
            if meter is None:
                items.append(
                    services.IngestItem(index, errors={"meter": [str(_("Unknown meter."))]})
                )
                continue
            taken_at = data.pop("taken_at")
            read_at = data.pop("read_at", taken_at)
            errors = reading_time_errors(tenant, taken_at, read_at)
            extra, extra_errors = _extra_values(meter, data.pop("extra", {}))
            if extra_errors:
                errors["extra"] = extra_errors
            if errors:
                items.append(services.IngestItem(index, errors=errors))
                continue
            values = {**extra, **data}
            items.append(services.IngestItem(index, meter, taken_at, read_at, values))
        return items


def _extra_values(meter: Meter, extra: dict[str, str]) -> tuple[dict[str, Decimal], list[str]]:
    """An ingest item's ``extra``: only values of the meter's profile that have no field of
    their own, each a number the register can hold. Returns the values and what is wrong."""
    specs = get_profile(meter.profile).extra_values
    unknown = [name for name in extra if name not in specs]
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        return {}, [
            _("Not a value of the %(profile)s profile that extra can hold: %(names)s.")
            % {"profile": meter.profile, "names": names}
        ]
    values, errors = {}, []
    for name, text in extra.items():
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            errors.append(_("%(name)s: not a number.") % {"name": name})
            continue
        problem = value_error(specs[name], value)
        if problem:
            errors.append(f"{name}: {problem}")
        else:
            values[name] = value
    return values, errors


def _plain(errors: Any) -> dict[str, list[str]]:
    return {field: [str(message) for message in messages] for field, messages in errors.items()}


class CompletenessQuery(serializers.Serializer):
    site = serializers.IntegerField(required=False)
    slot = serializers.DateTimeField(required=False)


class ReadingCompletenessViewSet(TenantViewSet):
    """The share of each site's active meters read for a slot: the meter readers' KPI."""

    permission_resource = "readings"
    permission_action = "completeness"
    queryset = Site.objects.order_by("id")
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("site", OpenApiTypes.INT),
            OpenApiParameter(
                "slot", OpenApiTypes.DATETIME, description="default: the last finished slot"
            ),
        ],
        responses=inline_serializer(
            "ReadingCompleteness",
            {
                "site": serializers.IntegerField(),
                "slot": serializers.DateTimeField(),
                "meters": serializers.IntegerField(),
                "read": serializers.IntegerField(),
                "completeness": serializers.FloatField(allow_null=True),
            },
            many=True,
        ),
    )
    def list(self, request: Request) -> Response:
        query = CompletenessQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        tenant = self.principal.tenant
        assert tenant is not None
        slot = reports.chosen_slot(tenant, query.validated_data.get("slot"))
        sites = self.get_queryset()
        if "site" in query.validated_data:
            sites = sites.filter(pk=query.validated_data["site"])
        return Response(
            [
                {
                    "site": row.key,
                    "slot": row.slot,
                    "meters": row.meters,
                    "read": row.read,
                    "completeness": row.completeness,
                }
                for row in reports.completeness_by_site(sites, slot)
            ]
        )


# --- events and commands ------------------------------------------------------------------------


class MeterEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MeterEvent
        fields = ["id", "occurred_at", "kind", "site", "gateway", "meter", "slot", "detail"]
        read_only_fields = fields


class MeterEventFilter(StrictFilterSet):
    kind = django_filters.ChoiceFilter(choices=MeterEventKind.choices)
    since = BoundedIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")

    class Meta:
        model = MeterEvent
        fields = ["kind", "meter", "gateway", "site", "since"]


class MeterEventViewSet(ReadOnlyTenantViewSet):
    """What went wrong while reading or commanding meters, newest first. Append-only."""

    permission_resource = "meter_events"
    queryset = MeterEvent.objects.all()
    serializer_class = MeterEventSerializer
    filterset_class = MeterEventFilter


class MeterCommandSerializer(TenantModelSerializer):
    class Meta:
        model = MeterCommand
        fields = [
            "id",
            "meter",
            "kind",
            "setpoint",
            "value",
            "reason",
            "state",
            "attempts",
            "last_error",
            "requested_by_kind",
            "requested_by_label",
            "created_at",
            "expires_at",
            "sent_at",
            "completed_at",
        ]
        read_only_fields = [
            "id",
            "state",
            "attempts",
            "last_error",
            "requested_by_kind",
            "requested_by_label",
            "created_at",
            "expires_at",
            "sent_at",
            "completed_at",
        ]


class MeterCommandViewSet(ReadOnlyTenantViewSet):
    """Relay trips and closes (拉闸 / 合闸) and setpoint writes, with their state."""

    permission_resource = "meter_commands"
    queryset = MeterCommand.objects.select_related("meter")
    serializer_class = MeterCommandSerializer
    filterset_fields = ["meter", "state", "kind"]

    @extend_schema(request=MeterCommandSerializer, responses={201: MeterCommandSerializer})
    def create(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        command = services.issue_command(
            self.principal,
            data.pop("meter"),
            kind=data["kind"],
            reason=data["reason"],
            setpoint=data.get("setpoint", ""),
            value=data.get("value"),
        )
        return Response(self.get_serializer(command).data, status=201)
