"""REST endpoints of deposits, refunds and account closings (销户).

Views parse, call one service and render: ``collection.services.deposits``, ``.refunds`` and
``.closing`` hold the rules (four eyes, what may be refunded, the closing's steps).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from collection.api import (
    AccountNumberField,
    AmountField,
    PrintsReceipts,
    PrintsSerializerMixin,
    RefusesConflicts,
)
from collection.deposit_models import DEPOSIT_CHANNEL_CHOICES
from collection.documents import deposit_receipt_context
from collection.models import (
    AccountClosing,
    Deposit,
    DepositPolicy,
    Refund,
    RefundChannel,
)
from collection.services.closing import (
    Payout,
    cancel_closing,
    close_account,
    finish_closing,
    preview_closing,
)
from collection.services.deposits import deposit_status, set_deposit_policy, take_deposit
from collection.services.receipts import print_deposit_receipt, reprint_deposit_receipt
from collection.services.refunds import (
    account_refundable,
    approve_refund,
    pay_refund,
    reject_refund,
    request_refund,
    reveal_payee_bank_account,
)
from customers.models import CustomerClass, Utility
from metering.api import RegisterField
from metering.meter_profiles import TOU_REGISTERS
from tenancy.api_base import ReadOnlyTenantViewSet, StrictLineField
from tenancy.money import ZERO

# --- deposit policy --------------------------------------------------------------------------


class DepositPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = DepositPolicy
        fields = ["id", "utility", "customer_class", "amount", "note", "updated_at"]
        read_only_fields = ["id", "updated_at"]


class DepositPolicyRequestSerializer(serializers.Serializer):
    utility = serializers.ChoiceField(choices=Utility.choices)
    customer_class = serializers.ChoiceField(choices=CustomerClass.choices)
    amount = AmountField(help_text='The deposit required, yuan: "2000.00".')
    note = StrictLineField(max_length=200, required=False, allow_blank=True, default="")


class DepositPolicyViewSet(ReadOnlyTenantViewSet):
    """Which accounts need a deposit, by utility and customer class. ``POST`` sets one (creates
    or changes the row of that utility and class)."""

    permission_resource = "deposit_policies"
    queryset = DepositPolicy.objects.order_by("utility", "customer_class")
    serializer_class = DepositPolicySerializer

    @extend_schema(request=DepositPolicyRequestSerializer, responses={201: DepositPolicySerializer})
    def create(self, request: Request) -> Response:
        body = DepositPolicyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = set_deposit_policy(self.principal, **body.validated_data)
        return Response(self.get_serializer(policy).data, status=201)


# --- deposits --------------------------------------------------------------------------------


class DepositSerializer(PrintsSerializerMixin, serializers.ModelSerializer):
    account_number = serializers.CharField(source="account.number", read_only=True)
    receipt = serializers.CharField(source="display_receipt_number", read_only=True)

    class Meta:
        model = Deposit
        fields = [
            "id", "site", "account", "account_number", "channel", "amount",
            "external_reference", "shift", "receipt", "taken_on", "taken_at", "actor_label",
            "original_printed", "reprints",
        ]  # fmt: skip
        read_only_fields = fields


class DepositRequestSerializer(serializers.Serializer):
    account = AccountNumberField()
    channel = serializers.ChoiceField(choices=DEPOSIT_CHANNEL_CHOICES)
    amount = AmountField()
    external_reference = StrictLineField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="The card terminal's slip reference: required for a card deposit.",
    )  # fmt: skip
    idempotency_key = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]{1,64}$",
        help_text="Unique per cashier: a retry returns the first deposit (200).",
    )


class DepositStatusSerializer(serializers.Serializer):
    account = serializers.CharField()
    deposit_required = serializers.DecimalField(max_digits=16, decimal_places=2)
    held = serializers.DecimalField(max_digits=16, decimal_places=2)
    missing = serializers.DecimalField(max_digits=16, decimal_places=2)
    refundable_credit = serializers.DecimalField(max_digits=16, decimal_places=2)
    refundable_deposit = serializers.DecimalField(max_digits=16, decimal_places=2)


class AccountQuerySerializer(serializers.Serializer):
    account = AccountNumberField()


class DepositViewSet(PrintsReceipts, ReadOnlyTenantViewSet):
    """Deposits taken at the counter (Dr cash on hand or card clearing, Cr the account's
    deposit), each with its receipt number (Y…) and its receipt's document, printed as the
    original once, then as reprints (重打). Filters: account, site."""

    permission_resource = "deposits"
    queryset = Deposit.objects.select_related("account").prefetch_related("prints").order_by("-id")
    serializer_class = DepositSerializer
    filterset_fields = ["account", "site"]
    receipt_context = staticmethod(deposit_receipt_context)
    record_original = staticmethod(print_deposit_receipt)
    record_reprint = staticmethod(reprint_deposit_receipt)
    receipt_number = staticmethod(lambda deposit: deposit.display_receipt_number)

    @extend_schema(request=DepositRequestSerializer, responses={201: DepositSerializer})
    def create(self, request: Request) -> Response:
        body = DepositRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        result = take_deposit(self.principal, **body.validated_data)
        deposit = self.get_queryset().get(pk=result.deposit.pk)
        return Response(self.get_serializer(deposit).data, status=201 if result.created else 200)

    @extend_schema(parameters=[AccountQuerySerializer], responses=DepositStatusSerializer)
    @action(detail=False, methods=["get"], permission_action="view")
    def status(self, request: Request) -> Response:
        """What the account needs, holds and misses of its deposit, and what may be refunded."""
        query = AccountQuerySerializer(
            data=request.query_params, context=self.get_serializer_context()
        )
        query.is_valid(raise_exception=True)
        account = query.validated_data["account"]
        status = deposit_status(account)
        can = account_refundable(account)
        return Response(
            DepositStatusSerializer(
                {"account": account.number, "deposit_required": status.required,
                 "held": status.held, "missing": status.missing, "refundable_credit": can.credit,
                 "refundable_deposit": can.deposit}
            ).data
        )  # fmt: skip


# --- refunds ---------------------------------------------------------------------------------


class RefundSerializer(serializers.ModelSerializer):
    account_number = serializers.CharField(source="account.number", read_only=True)
    payee_bank_account = serializers.CharField(
        source="payee_bank_account_masked",
        read_only=True,
        help_text="The customer's bank account, masked (6222 **** **** 1234). Whoever pays an "
        "approved transfer reveals it in full with POST …/{id}/reveal/ (audited).",
    )

    class Meta:
        model = Refund
        fields = [
            "id", "site", "account", "account_number", "from_wallet", "from_deposit", "amount",
            "channel", "payee_bank_account", "payee_bank", "provider", "reason", "state",
            "requested_at", "requested_by_label", "decided_at", "decided_by_label",
            "rejection_reason", "paid_at", "paid_by_label", "payment_reference",
        ]  # fmt: skip
        read_only_fields = fields


class RevealedBankAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    payee_bank_account = serializers.CharField(help_text="In full: 6222000011112222.")
    payee_bank = serializers.CharField()


class RefundRequestSerializer(serializers.Serializer):
    account = AccountNumberField()
    from_wallet = AmountField(
        min_value=ZERO, required=False, default=ZERO, help_text="Credit on account to refund, yuan."
    )
    from_deposit = AmountField(
        min_value=ZERO, required=False, default=ZERO, help_text="Deposit to refund, yuan."
    )
    channel = serializers.ChoiceField(choices=RefundChannel.choices)
    reason = StrictLineField(max_length=300)
    payee_bank_account = StrictLineField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    payee_bank = StrictLineField(max_length=100, required=False, allow_blank=True, default="")
    provider = serializers.RegexField(
        r"^[a-z0-9_-]{1,32}$", required=False, allow_blank=True, default=""
    )


class RefundRejectionSerializer(serializers.Serializer):
    reason = StrictLineField(max_length=300)


class RefundPaymentSerializer(serializers.Serializer):
    payment_reference = StrictLineField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text="The bank's or provider's reference of a transfer (not for cash).",
    )  # fmt: skip


class RefundViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """Refunds of credit on account and of deposits: requested (``POST``), approved or rejected
    by a second person (a supervisor of the site or finance, never the requester), then paid.
    The customer's bank account is answered masked; ``reveal`` gives it in full to whoever pays
    the transfer, audited. Filters: account, state, site."""

    permission_resource = "refunds"
    queryset = Refund.objects.select_related("account").order_by("-id")
    serializer_class = RefundSerializer
    filterset_fields = ["account", "state", "site", "channel"]

    def _answer(self, refund: Refund, status: int = 200) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=refund.pk)).data, status)

    @extend_schema(request=RefundRequestSerializer, responses={201: RefundSerializer})
    def create(self, request: Request) -> Response:
        body = RefundRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        return self._answer(request_refund(self.principal, **body.validated_data), 201)

    @extend_schema(request=None, responses=RefundSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve: the money moves to refunds payable."""
        return self._answer(approve_refund(self.principal, self.get_object()))

    @extend_schema(request=RefundRejectionSerializer, responses=RefundSerializer)
    @action(detail=True, methods=["post"], permission_action="approve")
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Reject with a reason: nothing moves."""
        body = RefundRejectionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        refund = reject_refund(self.principal, self.get_object(), body.validated_data["reason"])
        return self._answer(refund)

    @extend_schema(request=RefundPaymentSerializer, responses=RefundSerializer)
    @action(detail=True, methods=["post"], permission_action="pay")
    def pay(self, request: Request, pk: str | None = None) -> Response:
        """Record the refund paid (cash at the counter, a transfer with its reference)."""
        body = RefundPaymentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        refund = pay_refund(self.principal, self.get_object(), **body.validated_data)
        return self._answer(refund)

    @extend_schema(request=None, responses=RevealedBankAccountSerializer)
    @action(detail=True, methods=["post"], permission_action="reveal")
    def reveal(self, request: Request, pk: str | None = None) -> Response:
        """The customer's bank account in full, to whoever pays the approved transfer (403 to
        anyone else; 409 once the refund is paid or rejected). Every call is in the audit
        trail."""
        refund = self.get_object()
        full = reveal_payee_bank_account(self.principal, refund)
        revealed = {"id": refund.pk, "payee_bank_account": full, "payee_bank": refund.payee_bank}
        return Response(
            RevealedBankAccountSerializer(revealed).data, headers={"Cache-Control": "no-store"}
        )


# --- closing an account ----------------------------------------------------------------------


class PayoutSerializer(serializers.Serializer):
    channel = serializers.CharField()
    payee_bank_account = serializers.CharField(help_text="Masked: 6222 **** **** 1234.")
    payee_bank = serializers.CharField()
    provider = serializers.CharField()


class AccountClosingSerializer(serializers.ModelSerializer):
    account_number = serializers.CharField(source="account.number", read_only=True)
    bill_number = serializers.CharField(source="bill.number", read_only=True, default=None)
    payout = serializers.SerializerMethodField()

    class Meta:
        model = AccountClosing
        fields = [
            "id", "site", "account", "account_number", "reason", "state", "hold_reason",
            "final_taken_at", "bill", "bill_number", "prepaid_charge", "refund", "figures",
            "payout", "started_at", "closed_at", "actor_label", "cancelled_at", "cancel_reason",
            "cancelled_by_label",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(PayoutSerializer)
    def get_payout(self, closing: AccountClosing) -> dict[str, str]:
        """How a refund left over is paid, the customer's bank account masked."""
        return Payout.of(closing).masked()


class FinalRegistersSerializer(serializers.Serializer):
    """The final reading's registers, in the registers' format (the console's closing form
    checks what was typed with it too)."""

    total = RegisterField()
    tou_spike = RegisterField(required=False)
    tou_peak = RegisterField(required=False)
    tou_flat = RegisterField(required=False)
    tou_valley = RegisterField(required=False)

    def reading_values(self) -> dict[str, Any]:
        data = self.validated_data
        return {name: data[name] for name in ("total", *TOU_REGISTERS) if name in data}


class FinalReadingSerializer(FinalRegistersSerializer):
    account = AccountNumberField()
    taken_at = serializers.DateTimeField(help_text="When the final reading was taken.")


class ClosingRequestSerializer(FinalReadingSerializer):
    reason = StrictLineField(max_length=300)
    refund_channel = serializers.ChoiceField(
        choices=RefundChannel.choices, required=False, default=RefundChannel.CASH
    )
    payee_bank_account = StrictLineField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    payee_bank = StrictLineField(max_length=100, required=False, allow_blank=True, default="")
    provider = serializers.RegexField(
        r"^[a-z0-9_-]{1,32}$", required=False, allow_blank=True, default=""
    )


class ClosingCancelSerializer(serializers.Serializer):
    reason = StrictLineField(max_length=300)


class ClosingPreviewSerializer(serializers.Serializer):
    state = serializers.CharField()
    hold_reason = serializers.CharField()
    figures = serializers.DictField(child=serializers.CharField())
    bill = serializers.JSONField(allow_null=True)


class AccountClosingViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """销户: ``POST`` takes the final reading and, once it is valid, bills the partial period,
    applies the credit and the deposit, requests the refund of what is left and closes the
    account; a closing whose final reading waits for a verifier is resumed with ``finish``.
    ``preview`` shows the figures without writing anything."""

    permission_resource = "account_closings"
    queryset = AccountClosing.objects.select_related("account", "bill").order_by("-id")
    serializer_class = AccountClosingSerializer
    filterset_fields = ["account", "state", "site"]

    @extend_schema(request=ClosingRequestSerializer, responses={201: AccountClosingSerializer})
    def create(self, request: Request) -> Response:
        body = ClosingRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        closing = close_account(
            self.principal, data["account"], reason=data["reason"], taken_at=data["taken_at"],
            values=body.reading_values(),
            payout=Payout(data["refund_channel"], data["payee_bank_account"], data["payee_bank"],
                          data["provider"]),
        )  # fmt: skip
        return Response(self.get_serializer(self.get_queryset().get(pk=closing.pk)).data, 201)

    @extend_schema(request=None, responses=AccountClosingSerializer)
    @action(detail=True, methods=["post"], permission_action="close")
    def finish(self, request: Request, pk: str | None = None) -> Response:
        """Resume a closing whose final reading has been verified since."""
        closing = finish_closing(self.principal, self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=closing.pk)).data)

    @extend_schema(request=ClosingCancelSerializer, responses=AccountClosingSerializer)
    @action(detail=True, methods=["post"], permission_action="cancel")
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a closing that waits (nothing was posted); the reason is required and kept."""
        body = ClosingCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        closing = cancel_closing(
            self.principal, self.get_object(), reason=body.validated_data["reason"]
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=closing.pk)).data)

    @extend_schema(request=FinalReadingSerializer, responses=ClosingPreviewSerializer)
    @action(detail=False, methods=["post"], permission_action="close")
    def preview(self, request: Request) -> Response:
        """The final bill, the credit and deposit applied, the refund and the arrears that
        closing with this final reading would give; nothing is written."""
        body = FinalReadingSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        preview = preview_closing(
            self.principal, data["account"], taken_at=data["taken_at"],
            values=body.reading_values(),
        )  # fmt: skip
        return Response(ClosingPreviewSerializer(preview).data)
