"""REST endpoints of billing: tariffs and their assignments, common areas, billing settings,
bill runs (with progress), bills and their corrections, flagged bills for review, and prepaid
charges."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import django_filters
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.db.models import Q
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, mixins, serializers
from rest_framework.decorators import action
from rest_framework.fields import get_error_detail
from rest_framework.request import Request
from rest_framework.response import Response

from billing.bills import corrections, review
from billing.models import (
    Bill,
    BillCheck,
    BillingSettings,
    BillLine,
    BillRun,
    CommonArea,
    FlaggedBill,
    OpeningBalance,
    PrepaidCharge,
    ReviewState,
    RunState,
    SharingMethod,
    Tariff,
    TariffAssignment,
    TariffVersion,
)
from billing.runs import services as bill_services
from billing.tariffs import services as tariff_services
from billing.tariffs.spec import TariffSpec, TariffSpecError
from customers.models import Account, CustomerClass
from tenancy.api_base import (
    AgeFilterSet,
    CreateReadTenantViewSet,
    CreateReadUpdateTenantViewSet,
    IdsSerializer,
    PeriodField,
    ReadOnlyTenantViewSet,
    ScopedRelatedField,
    StrictCharField,
    TenantModelSerializer,
    TenantSettingsViewSet,
)
from tenancy.api_plumbing import ConflictingInput, ExactJSONField
from tenancy.models import Site
from verification.api import BoundaryReadingsField
from verification.periods import PeriodError, ensure_ended

if TYPE_CHECKING:
    pass

# --- tariffs -------------------------------------------------------------------------------


class EffectiveDateField(serializers.DateField):
    """A day a tariff version or assignment starts or ends: from 2000-01-01 to 2099-12-31 (a
    mistyped year, 9999 or 1900, never becomes a tariff's history)."""

    EARLIEST = date(2000, 1, 1)
    LATEST = date(2099, 12, 31)

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        if not self.EARLIEST <= day <= self.LATEST:
            raise serializers.ValidationError(
                _("Give a day from %(earliest)s to %(latest)s.")
                % {"earliest": self.EARLIEST.isoformat(), "latest": self.LATEST.isoformat()},
                code="out_of_range",
            )
        return day


class ReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=300)


class TariffVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = TariffVersion
        fields = ["id", "effective_from", "spec", "note", "created_at", "created_by_label"]
        read_only_fields = ["id", "created_at", "created_by_label"]


class TariffSerializer(TenantModelSerializer):
    versions = TariffVersionSerializer(many=True, read_only=True)

    class Meta:
        model = Tariff
        fields = ["id", "code", "name", "utility", "description", "created_at", "versions"]
        read_only_fields = ["id", "created_at", "versions"]


class NewVersionSerializer(serializers.Serializer):
    effective_from = EffectiveDateField()
    spec = ExactJSONField(help_text="The tariff specification (see the API docs).")
    note = StrictCharField(max_length=300, required=False, allow_blank=True, default="")
    confirm_backdated = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add the version although issued bills of the tariff cover its first day "
        "(refused with 409 `backdated` otherwise); those bills keep their prices.",
    )

    def validate_spec(self, value: Any) -> Any:
        """Every problem of the specification at once, each led by its path, beside any
        problem of the other fields (the service checks it again before it stores it)."""
        try:
            TariffSpec.parse(value)
        except TariffSpecError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value


class TariffViewSet(CreateReadUpdateTenantViewSet):
    """Tariffs as data; each version starts on a date and keeps its specification (flat,
    tiered, time of use, fees, two-part, power factor, agency price, funds, resale cap)."""

    permission_resource = "tariffs"
    queryset = Tariff.objects.prefetch_related("versions")
    serializer_class = TariffSerializer
    filterset_fields = ["utility", "code"]
    create_service = tariff_services.create_tariff
    update_service = tariff_services.update_tariff

    @extend_schema(request=NewVersionSerializer, responses={201: TariffVersionSerializer})
    @action(detail=True, methods=["post"], permission_action="change")
    def versions(self, request: Request, pk: str | None = None) -> Response:
        """Add a version from a date; every problem of a bad specification is answered at once,
        each with its path. A version from a day that issued bills of the tariff already cover
        is refused with 409 ``backdated`` (how many bills of which periods keep the old prices)
        unless ``confirm_backdated`` is true: issued bills are not re-priced."""
        tariff = self.get_object()
        body = NewVersionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = tariff_services.add_tariff_version(
                self.principal, tariff, **body.validated_data
            )
        except tariff_services.BackdatedVersionError as exc:
            raise ConflictingInput(get_error_detail(exc)) from exc
        return Response(TariffVersionSerializer(version).data, status=201)


class TariffVersionViewSet(ReadOnlyTenantViewSet, mixins.DestroyModelMixin):
    """A tariff's versions one by one (they are added through ``tariffs/{id}/versions/``). A
    mistyped version is removed (``DELETE`` with a ``reason``) only before it takes effect and
    while nothing was priced with it: refused with 409 ``version_in_effect`` or
    ``version_priced`` otherwise."""

    permission_resource = "tariffs"
    queryset = TariffVersion.objects.select_related("tariff__tenant")
    serializer_class = TariffVersionSerializer
    filterset_fields = ["tariff"]

    @extend_schema(request=ReasonSerializer, responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            tariff_services.delete_tariff_version(
                self.principal, version, body.validated_data["reason"]
            )
        except tariff_services.VersionNotRemovableError as exc:
            raise ConflictingInput(get_error_detail(exc)) from exc
        return Response(status=204)


class TariffAssignmentSerializer(TenantModelSerializer):
    tariff = ScopedRelatedField(queryset=Tariff.objects.all())
    account = ScopedRelatedField(queryset=Account.objects.all(), required=False, allow_null=True)
    customer_class = serializers.ChoiceField(
        choices=CustomerClass.choices, required=False, allow_blank=True, default=""
    )
    sites = ScopedRelatedField(
        queryset=Site.objects.all(),
        many=True,
        required=False,
        help_text="A class's assignment limited to these sites (none: every site).",
    )
    effective_from = EffectiveDateField()
    effective_to = EffectiveDateField(required=False, allow_null=True, default=None)

    class Meta:
        model = TariffAssignment
        fields = [
            "id", "tariff", "account", "customer_class", "sites", "effective_from",
            "effective_to",
        ]  # fmt: skip
        read_only_fields = ["id"]


class BulkAssignSerializer(serializers.Serializer):
    """The accounts by id (``accounts``) or by account number (``account_numbers``, as a clerk
    has them in a spreadsheet): one of the two."""

    tariff = ScopedRelatedField(queryset=Tariff.objects.all())
    accounts = serializers.ListField(
        child=ScopedRelatedField(queryset=Account.objects.all()),
        min_length=1,
        max_length=5000,
        required=False,
    )
    account_numbers = serializers.ListField(
        child=StrictCharField(max_length=32), min_length=1, max_length=5000, required=False
    )
    effective_from = EffectiveDateField()
    effective_to = EffectiveDateField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        numbers = attrs.pop("account_numbers", None)
        if (numbers is None) == ("accounts" not in attrs):
            raise serializers.ValidationError(
                {"accounts": _("Give the accounts either by id or by account number.")}
            )
        if numbers is not None:
            found = {
                account.number: account
                for account in Account.objects.filter(number__in=set(numbers))
            }
            unknown = [number for number in numbers if number not in found]
            if unknown:
                raise serializers.ValidationError(
                    {"account_numbers": _("Unknown account numbers: %(numbers)s")
                     % {"numbers": ", ".join(unknown[:50])}}
                )  # fmt: skip
            attrs["accounts"] = [found[number] for number in numbers]
        return attrs


class EndAssignmentSerializer(serializers.Serializer):
    effective_to = EffectiveDateField()


class TariffAssignmentViewSet(CreateReadTenantViewSet):
    """Which tariff applies to a customer class or to one account, from when until when."""

    permission_resource = "tariff_assignments"
    queryset = TariffAssignment.objects.select_related("tariff").prefetch_related("sites")
    serializer_class = TariffAssignmentSerializer
    filterset_fields = ["tariff", "account", "customer_class"]
    create_service = tariff_services.assign_tariff_from_api

    def get_queryset(self) -> models.QuerySet:
        """Assignments are tenant-wide, but one that names an account, or a class's assignment
        limited to sites, belongs to sites: a user with a grant for some sites sees those of
        their sites' accounts and classes, never another site's accounts and tariffs."""
        queryset = super().get_queryset()
        site_ids = self.site_scope.site_ids_or_none
        if site_ids is None:
            return queryset
        for_class = Q(account__isnull=True) & (Q(sites__isnull=True) | Q(sites__in=site_ids))
        return queryset.filter(for_class | Q(account__site__in=site_ids)).distinct()

    @extend_schema(request=EndAssignmentSerializer, responses=TariffAssignmentSerializer)
    @action(detail=True, methods=["post"], permission_action="change")
    def end(self, request: Request, pk: str | None = None) -> Response:
        """End the assignment on a date (exclusive)."""
        body = EndAssignmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        assignment = tariff_services.end_tariff_assignment(
            self.principal, self.get_object(), body.validated_data["effective_to"]
        )
        return Response(self.get_serializer(assignment).data)

    @extend_schema(
        request=BulkAssignSerializer, responses={201: TariffAssignmentSerializer(many=True)}
    )
    @action(detail=False, methods=["post"], permission_action="add")
    def bulk(self, request: Request) -> Response:
        """Assign a tariff to many accounts at once: all or none, each refused account named."""
        body = BulkAssignSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        made = tariff_services.assign_tariff_to_accounts(
            self.principal,
            data["tariff"],
            data["accounts"],
            effective_from=data["effective_from"],
            effective_to=data["effective_to"],
        )
        return Response(self.get_serializer(made, many=True).data, status=201)


class CommonAreaSerializer(TenantModelSerializer):
    site = ScopedRelatedField(queryset=Site.objects.all())
    account = ScopedRelatedField(queryset=Account.objects.all())
    members = serializers.ListField(
        child=ScopedRelatedField(queryset=Account.objects.all()), write_only=True, min_length=1
    )
    member_accounts = serializers.SerializerMethodField()
    method = serializers.ChoiceField(choices=SharingMethod.choices)

    class Meta:
        model = CommonArea
        fields = ["id", "site", "name", "account", "method", "members", "member_accounts"]
        read_only_fields = ["id", "member_accounts"]

    def get_member_accounts(self, area: CommonArea) -> list[int]:
        return [member.account_id for member in area.members.all()]


class CommonAreaViewSet(CreateReadTenantViewSet):
    """公摊: a common-area meter's account shared among member accounts on their bills."""

    permission_resource = "common_areas"
    queryset = CommonArea.objects.prefetch_related("members")
    serializer_class = CommonAreaSerializer
    filterset_fields = ["site"]
    create_service = tariff_services.create_common_area


class BillingSettingsSerializer(TenantModelSerializer):
    class Meta:
        model = BillingSettings
        exclude = ["id", "tenant", "prepaid_charged_at"]


class BillingSettingsViewSet(TenantSettingsViewSet):
    """VAT rates and tax codes, bill checks and the prepaid charging interval."""

    permission_resource = "billing_settings"
    serializer_class = BillingSettingsSerializer
    settings_model = BillingSettings
    update_service = tariff_services.update_billing_settings


# --- bill runs and bills -------------------------------------------------------------------


class BillRunSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    stalled = serializers.BooleanField(
        read_only=True,
        help_text="Pricing or issuing with no progress for longer than the stall threshold "
        "(BARS_STALL_MINUTES): its worker most likely died. The run resumes where it stopped "
        "when its task is delivered again, or when it is started again.",
    )

    class Meta:
        model = BillRun
        fields = [
            "id", "site", "period", "supplementary", "state", "total", "done", "progress",
            "bills", "flagged", "issued", "voided", "held_back", "amount", "started_by_label",
            "approved_by_label",
            "started_at", "approved_at", "finished_at", "progressed_at", "stalled",
        ]  # fmt: skip
        read_only_fields = fields

    def get_progress(self, run: BillRun) -> float:
        """Share of the current stage done: accounts priced, then bills issued."""
        if run.state == RunState.RUNNING:
            return round(run.done / run.total, 4) if run.total else 1.0
        if run.state == RunState.ISSUING:
            to_issue = run.bills - run.flagged
            return round(run.issued / to_issue, 4) if to_issue else 1.0
        return 1.0


class StartRunSerializer(serializers.Serializer):
    site = ScopedRelatedField(queryset=Site.objects.all())
    period = PeriodField()
    supplementary = serializers.BooleanField(
        default=False,
        help_text="A catch-up run after the period's issued run: bills the accounts with no "
        "bill for the period yet, earlier unbilled periods first.",
    )


class BillRunViewSet(ReadOnlyTenantViewSet):
    """Bill runs per site and period: pricing runs as a task (watch ``done`` of ``total``);
    a second person approves, which issues the unflagged bills and posts them."""

    permission_resource = "bill_runs"
    queryset = BillRun.objects.all()
    serializer_class = BillRunSerializer
    filterset_fields = ["site", "period", "state"]

    @extend_schema(request=StartRunSerializer, responses={201: BillRunSerializer})
    def create(self, request: Request) -> Response:
        """Start (or resume) the run of a site and period, or a supplementary run after it."""
        body = StartRunSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        ensure_ended(body.validated_data["site"], body.validated_data["period"])
        try:
            run = bill_services.start_bill_run(
                self.principal,
                body.validated_data["site"],
                body.validated_data["period"],
                supplementary=body.validated_data["supplementary"],
            )
        except PeriodError as exc:
            raise exceptions.ValidationError({"period": [str(exc)]}) from exc
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=201)

    @extend_schema(request=None, responses={202: BillRunSerializer})
    @action(detail=True, methods=["post"], permission_action="approve")
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve the drafted run (not by who started it) and issue its bills."""
        run = self.get_object()
        run = bill_services.start_approval(self.principal, run)
        return Response(self.get_serializer(run).data, status=202)


class BillLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = BillLine
        fields = [
            "position", "component", "label", "label_en", "quantity", "unit", "unit_price",
            "amount", "tax_rate", "tax", "starts_on", "ends_on",
        ]  # fmt: skip
        read_only_fields = fields


class BillSerializer(serializers.ModelSerializer):
    lines = BillLineSerializer(many=True, read_only=True)
    account_number = serializers.CharField(source="account.number", read_only=True)
    opening = BoundaryReadingsField()
    closing = BoundaryReadingsField()

    class Meta:
        model = Bill
        fields = [
            "id", "number", "site", "account", "account_number", "run", "period", "kind",
            "state", "supplementary", "corrects", "cause", "utility", "starts_on", "ends_on",
            "total", "tax_total", "consumption", "opening", "closing", "checks", "reason",
            "buyer_name", "buyer_tax_id", "tax_code", "payment_reference", "issue_date",
            "due_date", "entry", "created_by_label", "approved_by_label", "created_at",
            "issued_at", "lines",
        ]  # fmt: skip
        read_only_fields = fields


class HistoryEntrySerializer(serializers.Serializer):
    period = serializers.CharField()
    kwh = serializers.DecimalField(max_digits=14, decimal_places=3)


class BillDetailSerializer(BillSerializer):
    history = serializers.SerializerMethodField(
        help_text="The account's consumption of its last 12 billed periods, oldest first."
    )

    class Meta(BillSerializer.Meta):
        fields = [*BillSerializer.Meta.fields, "history"]
        read_only_fields = fields

    @extend_schema_field(HistoryEntrySerializer(many=True))
    def get_history(self, bill: Bill) -> Any:
        from billing.bills.documents import consumption_history

        return HistoryEntrySerializer(consumption_history(bill), many=True).data


class BillViewSet(ReadOnlyTenantViewSet):
    """Bills, credit notes and re-bills. An issued bill is never edited: credit it, or re-bill
    it from the corrected period consumption."""

    permission_resource = "bills"
    queryset = Bill.objects.select_related("account").prefetch_related("lines")
    serializer_class = BillSerializer
    filterset_fields = ["site", "account", "period", "state", "kind", "run", "supplementary"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return BillDetailSerializer if self.action == "retrieve" else BillSerializer

    @extend_schema(request=None, responses=BillSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve and issue a flagged draft or a re-bill waiting for review."""
        bill = review.approve_bill(self.principal, self.get_object())
        return Response(self.get_serializer(bill).data)

    @extend_schema(request=ReasonSerializer, responses=BillSerializer)
    @action(detail=True, methods=["post"], permission_action="correct")
    def void(self, request: Request, pk: str | None = None) -> Response:
        """Void a draft that must not be issued."""
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        bill = review.void_bill(self.principal, self.get_object(), body.validated_data["reason"])
        return Response(self.get_serializer(bill).data)

    @extend_schema(request=ReasonSerializer, responses={201: BillSerializer})
    @action(detail=True, methods=["post"], permission_action="correct")
    def credit(self, request: Request, pk: str | None = None) -> Response:
        """Draft a credit note reversing the bill, for a second person to approve."""
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = corrections.credit_bill(
            self.principal, self.get_object(), body.validated_data["reason"]
        )
        return Response(self.get_serializer(note).data, status=201)

    @extend_schema(
        request=ReasonSerializer,
        responses={
            201: inline_serializer(
                "Rebilled", {"credit_note": BillSerializer(), "rebill": BillSerializer()}
            )
        },
    )
    @action(detail=True, methods=["post"], permission_action="correct")
    def rebill(self, request: Request, pk: str | None = None) -> Response:
        """Credit the bill and draft a re-bill from the current period consumption."""
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note, again = corrections.rebill(
            self.principal, self.get_object(), body.validated_data["reason"]
        )
        return Response(
            {
                "credit_note": self.get_serializer(note).data,
                "rebill": self.get_serializer(again).data,
            },
            status=201,
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("lang", str, enum=["zh-hans", "en"], description="Language"),
            OpenApiParameter("as", str, enum=["pdf", "html"], description="Document format"),
        ],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], permission_action="view")
    def document(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The bill as a document: PDF (default) or HTML, in Chinese (default) or English."""
        from billing.bills.documents import render_bill

        bill = self.get_object()
        language = request.query_params.get("lang", "zh-hans")
        kind = request.query_params.get("as", "pdf")
        if language not in ("zh-hans", "en") or kind not in ("pdf", "html"):
            raise exceptions.ValidationError({"lang": ["zh-hans or en"], "as": ["pdf or html"]})
        body, content_type = render_bill(bill, language=language, as_pdf=kind == "pdf")
        response = HttpResponse(body, content_type=content_type)
        if kind == "pdf":
            response["Content-Disposition"] = f'inline; filename="bill-{bill.number}.pdf"'
        return response


# --- flagged bills ---------------------------------------------------------------------------


class FlaggedBillSerializer(serializers.ModelSerializer):
    bill = BillSerializer(read_only=True)

    class Meta:
        model = FlaggedBill
        fields = [
            "id", "site", "first_check", "checks", "state", "resolution", "created_at",
            "resolved_at", "resolved_by_label", "bill",
        ]  # fmt: skip
        read_only_fields = fields


class FlaggedBillFilter(AgeFilterSet):
    check = django_filters.ChoiceFilter(field_name="first_check", choices=BillCheck.choices)
    state = django_filters.ChoiceFilter(choices=ReviewState.choices)

    class Meta:
        model = FlaggedBill
        fields = ["site", "check", "state", "older_than_hours"]


class FlaggedBillViewSet(ReadOnlyTenantViewSet):
    """Draft bills held for review (zero, negative, far from the account's history, re-bills):
    the verifier's second list beside the verification queue. Approving issues the bill; void
    it on the bill (``/bills/{id}/void/``)."""

    permission_resource = "flagged_bills"
    queryset = FlaggedBill.objects.select_related("bill").prefetch_related("bill__lines")
    serializer_class = FlaggedBillSerializer
    filterset_class = FlaggedBillFilter

    @extend_schema(request=None, responses=FlaggedBillSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve and issue the flagged bill."""
        flag = self.get_object()
        review.approve_bill(self.principal, flag.bill)
        flag.refresh_from_db()
        return Response(self.get_serializer(flag).data)

    @extend_schema(
        request=IdsSerializer,
        responses=inline_serializer("BillsApproved", {"approved": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="bulk-approve", permission_action="approve")
    def bulk_approve(self, request: Request) -> Response:
        """Approve and issue many flagged bills at once: all or none."""
        flags = self.objects_named_in_body()
        return Response({"approved": review.approve_flagged_bills(self.principal, flags)})


# --- go-live ---------------------------------------------------------------------------------


class OpeningBalanceSerializer(serializers.ModelSerializer):
    account_number = serializers.CharField(source="account.number", read_only=True)

    class Meta:
        model = OpeningBalance
        fields = [
            "id", "account", "account_number", "site", "arrears", "tier_year", "tier_kwh",
            "entry", "imported_by_label", "imported_at",
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.STR)
class OpeningValueField(serializers.Field):
    """A row's value as text: a string or a JSON number (read exactly); the import checks it
    and names the row (a NUL included)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int | Decimal):
            raise serializers.ValidationError(_("Text or a number."))
        text = str(data)
        if len(text) > 64:
            raise serializers.ValidationError(_("At most 64 characters."))
        return text

    def to_representation(self, value: Any) -> Any:
        return value


class OpeningRowSerializer(serializers.Serializer):
    account = OpeningValueField()
    arrears = OpeningValueField(required=False, default="0")
    tier_kwh = OpeningValueField(required=False, default="0")


class CsvTextField(serializers.CharField):
    """A file's text; a NUL in it is named with its line by the import, not refused whole."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]


class OpeningImportSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=OpeningRowSerializer(), required=False, min_length=1, max_length=200_000
    )
    csv = CsvTextField(
        required=False,
        max_length=20_000_000,
        trim_whitespace=False,
        help_text="The file's text instead of rows: columns account, arrears, tier_kwh "
        "(or 户号, 欠费, 年累计电量).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("rows" in attrs) == ("csv" in attrs):
            raise serializers.ValidationError(_("Send rows or csv, one of them."))
        return attrs


class OpeningBalanceViewSet(ReadOnlyTenantViewSet):
    """Go-live: each account's arrears and tier-year consumption from the previous system."""

    permission_resource = "opening_balances"
    queryset = OpeningBalance.objects.select_related("account")
    serializer_class = OpeningBalanceSerializer
    filterset_fields = ["site", "account", "tier_year"]

    @extend_schema(
        request=OpeningImportSerializer,
        responses={
            201: inline_serializer(
                "OpeningImported",
                {
                    "accounts": serializers.IntegerField(),
                    "arrears": serializers.DecimalField(max_digits=16, decimal_places=2),
                    "tier_kwh": serializers.DecimalField(max_digits=16, decimal_places=3),
                    "tier_year": serializers.IntegerField(),
                },
            )
        },
    )
    @action(detail=False, methods=["post"], url_path="import", permission_action="import")
    def import_rows(self, request: Request) -> Response:
        """Import opening balances: all or nothing, every bad row named by its line."""
        from billing.opening import import_opening, rows_from_csv

        body = OpeningImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        rows = data["rows"] if "rows" in data else rows_from_csv(data["csv"])
        assert self.principal.tenant is not None
        done = import_opening(
            self.principal,
            self.principal.tenant,
            rows,
            self.site_scope.site_ids_or_none,
            first_line=1 if "rows" in data else 2,
        )
        return Response(
            {"accounts": done.accounts, "arrears": str(done.arrears),
             "tier_kwh": str(done.tier_kwh), "tier_year": done.tier_year},
            status=201,
        )  # fmt: skip


# --- prepaid charges -----------------------------------------------------------------------


class PrepaidChargeSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrepaidCharge
        fields = [
            "id", "account", "site", "from_taken_at", "to_taken_at", "opening", "closing",
            "consumption", "lines", "amount", "tax", "entry", "charged_at",
        ]  # fmt: skip
        read_only_fields = fields


class PrepaidChargeViewSet(ReadOnlyTenantViewSet):
    """What each prepaid account's validated consumption was charged to its wallet."""

    permission_resource = "prepaid_charges"
    queryset = PrepaidCharge.objects.all()
    serializer_class = PrepaidChargeSerializer
    filterset_fields = ["account", "site"]

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "PrepaidCharged",
            {
                "accounts": serializers.IntegerField(),
                "charged": serializers.IntegerField(),
                "amount": serializers.DecimalField(max_digits=16, decimal_places=2),
                "skipped": serializers.DictField(child=serializers.CharField()),
            },
        ),
    )
    @action(detail=False, methods=["post"], url_path="run", permission_action="run")
    def run(self, request: Request) -> Response:
        """Charge every prepaid account now, without waiting for the interval."""
        from billing.prepaid import charge_prepaid_accounts

        assert self.principal.tenant is not None
        summary = charge_prepaid_accounts(
            self.principal, self.principal.tenant, self.site_scope.site_ids_or_none
        )
        return Response(
            {"accounts": summary.accounts, "charged": summary.charged,
             "amount": str(summary.amount), "skipped": summary.skipped}
        )  # fmt: skip
