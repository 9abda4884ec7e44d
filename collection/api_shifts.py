"""REST endpoints of cashier shifts (日结), the cash handed to the bank, holiday cash approvals
and the tenant's collection policy.

Views parse, call one service and render: who may do what beyond the matrix (a cashier closes
only their own shift, nobody approves their own difference or holiday cash) is the services'.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from collection.api import AccountNumberField, AmountField, RefusesConflicts
from collection.models import CashApproval, CashHandover, CollectionPolicy, Shift, ShiftState
from collection.services import cash_rules, shifts
from tenancy.api_base import (
    ReadOnlyTenantViewSet,
    ScopedRelatedField,
    StrictLineField,
    TenantSettingsViewSet,
)
from tenancy.models import Site, User


def money_field(**kwargs: Any) -> serializers.DecimalField:
    kwargs.setdefault("min_value", Decimal("0.00"))
    return AmountField(max_value=shifts.MAX_CASH, **kwargs)


# --- shifts ------------------------------------------------------------------------------------


class OpenShiftSerializer(serializers.Serializer):
    site = ScopedRelatedField(queryset=Site.objects.all())
    float_amount = money_field(help_text="备用金: the change the drawer starts with (may be 0).")


class CloseShiftSerializer(serializers.Serializer):
    counted_cash = money_field(help_text="The cash counted in the drawer, float included.")
    counted_card = money_field(
        required=False, default=Decimal("0.00"), help_text="The card terminal's settlement total."
    )
    note = StrictLineField(max_length=300, required=False, allow_blank=True, default="")


class DecisionSerializer(serializers.Serializer):
    note = StrictLineField(max_length=300)


class ChannelFiguresSerializer(serializers.Serializer):
    payments = serializers.IntegerField()
    taken = serializers.DecimalField(max_digits=16, decimal_places=2)
    reversals = serializers.IntegerField()
    reversed = serializers.DecimalField(max_digits=16, decimal_places=2)
    net = serializers.DecimalField(max_digits=16, decimal_places=2)


class FiguresSerializer(serializers.Serializer):
    float_amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    cash = ChannelFiguresSerializer()
    cash_movements = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        help_text="The cash-on-hand ledger's movements in the shift (payments, reversals, any "
        "other cash movement).",
    )
    other_cash = serializers.DecimalField(max_digits=16, decimal_places=2)
    expected_cash = serializers.DecimalField(max_digits=16, decimal_places=2)
    card = ChannelFiguresSerializer()
    card_deposits = serializers.IntegerField(help_text="Deposits taken by card in the shift.")
    card_deposited = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="Their total, counted in expected_card."
    )
    card_earlier_reversed = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        help_text="Reversals of the cashier's card payments of earlier shifts made since their "
        "last close (refunded on the terminal): subtracted from expected_card.",
    )
    expected_card = serializers.DecimalField(max_digits=16, decimal_places=2)


class ShiftSerializer(serializers.ModelSerializer):
    expected = serializers.SerializerMethodField()

    class Meta:
        model = Shift
        fields = [
            "id", "site", "cashier", "cashier_label", "state", "float_amount", "opened_at",
            "closed_at", "expected_cash", "expected_card", "cash_payments", "card_payments",
            "counted_cash", "counted_card", "difference_cash", "difference_card", "counted_at",
            "count_note", "decision_note", "decided_at", "decided_by_label", "difference_entry",
            "expected",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(
        FiguresSerializer(
            allow_null=True,
            help_text="The expected figures in detail: live while open, as fixed at close after. "
            "In a list only for open shifts (a closed one has its expected_cash and "
            "expected_card).",
        )
    )
    def get_expected(self, shift: Shift) -> dict[str, Any] | None:
        view = self.context.get("view")
        if getattr(view, "action", None) == "list" and shift.state != ShiftState.OPEN:
            return None
        figures = shifts.shift_figures(shift)
        return FiguresSerializer(
            {
                "float_amount": figures.float_amount,
                "cash": {**vars(figures.cash), "net": figures.cash.net},
                "cash_movements": figures.cash_movements,
                "other_cash": figures.other_cash,
                "expected_cash": figures.expected_cash,
                "card": {**vars(figures.card), "net": figures.card.net},
                "card_deposits": figures.card_deposits,
                "card_deposited": figures.card_deposited,
                "card_earlier_reversed": figures.card_earlier_reversed,
                "expected_card": figures.expected_card,
            }
        ).data


class ShiftViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """Cashier shifts (日结). ``POST`` opens the caller's shift at a site with a float (one open
    shift per cashier); every counter payment joins it. ``close`` records the cash counted and
    the card settlement against the expected figures (from the ledger); a difference waits for
    a supervisor's ``approve`` (the cash difference is posted to cash over and short) or
    ``reject`` (count again). Filters: state, site, cashier."""

    permission_resource = "shifts"
    queryset = Shift.objects.select_related("tenant").order_by("-pk")
    serializer_class = ShiftSerializer
    filterset_fields = ["state", "site", "cashier"]

    @extend_schema(request=OpenShiftSerializer, responses={201: ShiftSerializer})
    def create(self, request: Request) -> Response:
        body = OpenShiftSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        shift = shifts.open_shift(
            self.principal,
            site=body.validated_data["site"],
            float_amount=body.validated_data["float_amount"],
        )
        return Response(self.get_serializer(shift).data, status=201)

    def _render(self, shift: Shift) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=shift.pk)).data)

    @extend_schema(request=CloseShiftSerializer, responses=ShiftSerializer)
    @action(detail=True, methods=["post"], permission_action="close")
    def close(self, request: Request, pk: str | None = None) -> Response:
        """Close the caller's shift with the count (or count again after a rejection)."""
        shift = self.get_object()
        body = CloseShiftSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._render(shifts.close_shift(self.principal, shift, **body.validated_data))

    @extend_schema(request=DecisionSerializer, responses=ShiftSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve the difference: never the shift's cashier."""
        shift = self.get_object()
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = body.validated_data["note"]
        return self._render(shifts.approve_difference(self.principal, shift, note))

    @extend_schema(request=DecisionSerializer, responses=ShiftSerializer)
    @action(detail=True, methods=["post"], permission_action="reject")
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Reject the count: the cashier counts again."""
        shift = self.get_object()
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._render(shifts.reject_count(self.principal, shift, body.validated_data["note"]))


# --- hand-over to the bank ---------------------------------------------------------------------


class HandoverRequestSerializer(serializers.Serializer):
    site = ScopedRelatedField(queryset=Site.objects.all())
    cashier = serializers.PrimaryKeyRelatedField(
        queryset=User.tenant_staff.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="Whose cash: the caller when left out (a supervisor may name a cashier).",
    )
    amount = money_field(min_value=Decimal("0.01"))
    bank = serializers.RegexField(
        r"^[A-Za-z0-9_-]{1,32}$",
        help_text="The bank's code: icbc, ccb… (letters in either case; kept in lower case).",
        error_messages={
            "invalid": gettext_lazy("A bank's code is letters, digits, - and _: icbc, ccb…")
        },
    )
    slip_reference = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]{1,64}$", help_text="The bank slip's number: once per bank."
    )
    handed_on = serializers.DateField(required=False, default=None, allow_null=True)

    def validate_bank(self, value: str) -> str:
        return value.lower()


class CashHandoverSerializer(serializers.ModelSerializer):
    class Meta:
        model = CashHandover
        fields = [
            "id", "site", "cashier", "cashier_label", "amount", "bank", "slip_reference",
            "handed_on", "entry", "recorded_at", "actor_label",
        ]  # fmt: skip
        read_only_fields = fields


class CashHandoverViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """Cash handed to the bank (解款/缴存): Dr the bank's clearing account, Cr the cashier's cash
    on hand, at most the cash on hand from closed shifts; once per bank slip (a retry answers
    200 with the first). Filters: site, cashier, bank, handed_on."""

    permission_resource = "cash_handovers"
    queryset = CashHandover.objects.order_by("-pk")
    serializer_class = CashHandoverSerializer
    filterset_fields = ["site", "cashier", "bank", "handed_on"]

    @extend_schema(
        request=HandoverRequestSerializer,
        responses={201: CashHandoverSerializer, 200: CashHandoverSerializer},
    )
    def create(self, request: Request) -> Response:
        body = HandoverRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        tenant = self.principal.tenant
        assert tenant is not None
        cashier = data.pop("cashier") or self.principal.user
        if cashier is None:
            raise serializers.ValidationError({"cashier": [_("Name the cashier.")]})
        handed_on = data.pop("handed_on") or timezone.localdate(timezone=tenant.zone)
        handover, created = shifts.hand_over_cash(
            self.principal, cashier=cashier, handed_on=handed_on, **data
        )
        return Response(self.get_serializer(handover).data, status=201 if created else 200)


# --- holiday cash approvals --------------------------------------------------------------------


class CashApprovalRequestSerializer(serializers.Serializer):
    account = AccountNumberField()
    cashier = serializers.PrimaryKeyRelatedField(queryset=User.tenant_staff.filter(is_active=True))
    amount = money_field(min_value=Decimal("0.01"), help_text="The most the top-up may be.")
    business_day = serializers.DateField(help_text="The day the bank is closed.")
    reason = StrictLineField(max_length=300)


class CashApprovalSerializer(serializers.ModelSerializer):
    account_number = serializers.CharField(source="account.number", read_only=True)
    used = serializers.SerializerMethodField()

    class Meta:
        model = CashApproval
        fields = [
            "id", "site", "account", "account_number", "cashier", "cashier_label", "amount",
            "business_day", "reason", "created_at", "actor_label", "payment", "used_at", "used",
        ]  # fmt: skip
        read_only_fields = fields

    def get_used(self, approval: CashApproval) -> bool:
        return approval.payment_id is not None


class CashApprovalViewSet(ReadOnlyTenantViewSet):
    """Holiday cash approvals: on a day the bank is closed a cash top-up of a prepaid account
    needs one (and is capped, per the collection policy). A supervisor gives it for one account,
    cashier, day and amount at most; the cashier's payment names it (``cash_approval``) and uses
    it up. Filters: site, account, cashier, business_day."""

    permission_resource = "cash_approvals"
    queryset = CashApproval.objects.select_related("account").order_by("-pk")
    serializer_class = CashApprovalSerializer
    filterset_fields = ["site", "account", "cashier", "business_day"]

    @extend_schema(request=CashApprovalRequestSerializer, responses={201: CashApprovalSerializer})
    def create(self, request: Request) -> Response:
        body = CashApprovalRequestSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        body.is_valid(raise_exception=True)
        approval = cash_rules.grant_cash_approval(self.principal, **body.validated_data)
        return Response(self.get_serializer(approval).data, status=201)


# --- the collection policy ---------------------------------------------------------------------


class CollectionPolicySerializer(serializers.ModelSerializer):
    holiday_cash_cap = money_field(min_value=Decimal("0.01"))

    class Meta:
        model = CollectionPolicy
        fields = ["holiday_cash_cap", "holiday_cash_approval"]


class CollectionPolicyViewSet(TenantSettingsViewSet):
    """The holiday cash rule, per tenant: the cap a cash top-up may be when the bank is closed
    (5,000.00 by default) and whether it needs a supervisor's approval (yes by default)."""

    permission_resource = "collection_policy"
    serializer_class = CollectionPolicySerializer
    settings_model = CollectionPolicy
    update_service = cash_rules.update_collection_policy
