"""REST endpoints of recharge cards (充值卡): batches (generate, list, the one-time PIN file,
release for sale, void), cards (list and detail without PINs, void, unlock) and redemptions.

Views parse, call one service (``collection.services.vouchers``) and render. A redemption is
a payment: it answers with the payment, as ``POST /payments/`` does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.db.models import Count, Q, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from collection.api import (
    AccountNumberField,
    AmountField,
    PaymentSerializer,
    RefusesConflicts,
    payments,
)
from collection.models import (
    AttemptOutcome,
    Channel,
    VoucherBatch,
    VoucherBatchState,
    VoucherCard,
    VoucherCardState,
)
from collection.services import vouchers
from collection.services.attempts import AttemptRequest, Failure, record_failed_attempt
from customers.models import Utility
from tenancy.api_base import ReadOnlyTenantViewSet, StrictCharField, StrictLineField

CARD_COUNTS = {
    state: Count("cards", filter=Q(cards__state=state)) for state in VoucherCardState.values
}


# --- batches -----------------------------------------------------------------------------------


class BatchRequestSerializer(serializers.Serializer):
    face_value = AmountField(
        min_value=vouchers.MIN_FACE_VALUE,
        max_value=vouchers.MAX_FACE_VALUE,
        help_text='Yuan per card, as a string: "50.00".',
    )
    count = serializers.IntegerField(min_value=1, max_value=vouchers.MAX_CARDS)
    expires_on = serializers.DateField(help_text="The last day a card may be redeemed.")
    utility = serializers.ChoiceField(
        choices=Utility.choices, required=False, allow_blank=True, default=""
    )
    note = StrictLineField(max_length=300, required=False, allow_blank=True, default="")


class VoidReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=300)


class VoucherBatchSerializer(serializers.ModelSerializer):
    cards = serializers.SerializerMethodField()
    pins_available = serializers.SerializerMethodField()
    outstanding = serializers.SerializerMethodField()

    class Meta:
        model = VoucherBatch
        fields = [
            "id", "number", "face_value", "count", "expires_on", "utility", "note", "state",
            "created_at", "actor_label", "pins_available", "pins_downloaded_at",
            "pins_downloaded_by", "released_at", "released_by", "released_entry", "void_reason",
            "voided_at", "cards", "outstanding",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(
        serializers.DictField(child=serializers.IntegerField(), help_text="Cards per state.")
    )
    def get_cards(self, batch: VoucherBatch) -> dict[str, int]:
        return {state: getattr(batch, state, 0) for state in VoucherCardState.values}

    def get_pins_available(self, batch: VoucherBatch) -> bool:
        """The PIN file is there to download (once, by the administrator who generated it)."""
        return batch.pins_downloaded_at is None and batch.state != VoucherBatchState.VOID

    @extend_schema_field(serializers.DecimalField(max_digits=16, decimal_places=2))
    def get_outstanding(self, batch: VoucherBatch) -> str:
        """The liability the batch's unredeemed cards stand for (none before release)."""
        if batch.state != VoucherBatchState.RELEASED:
            return "0.00"
        return str(batch.face_value * getattr(batch, VoucherCardState.UNREDEEMED, 0))


def voucher_batches() -> QuerySet[VoucherBatch]:
    return VoucherBatch.objects.annotate(**CARD_COUNTS)


class VoucherBatchViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """Recharge card batches, with their cards counted by state. ``POST`` generates one (a
    tenant administrator): 1 to 10,000 cards of one face value, with serials and secret PINs;
    the PINs are handed over once, as a CSV file (``pins``), for printing. Filters: state."""

    permission_resource = "voucher_batches"
    queryset = voucher_batches()
    serializer_class = VoucherBatchSerializer
    filterset_fields = ["state", "utility"]

    @extend_schema(request=BatchRequestSerializer, responses={201: VoucherBatchSerializer})
    def create(self, request: Request) -> Response:
        body = BatchRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        batch = vouchers.generate_batch(self.principal, **body.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data, status=201)

    @extend_schema(request=None, responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["post"], permission_action="download_pins")
    def pins(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The serials and PINs, once, to the administrator who generated the batch; a second
        download is refused (409) and audited."""
        pin_file = vouchers.download_pins(self.principal, self.get_object())
        response = HttpResponse(pin_file.content, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{pin_file.filename}"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(request=None, responses=VoucherBatchSerializer)
    @action(detail=True, methods=["post"], permission_action="release")
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Release the batch for sale: its cards become a voucher liability."""
        batch = vouchers.release_batch(self.principal, self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data)

    @extend_schema(request=VoidReasonSerializer, responses=VoucherBatchSerializer)
    @action(detail=True, methods=["post"], permission_action="void")
    def void(self, request: Request, pk: str | None = None) -> Response:
        """Void every unredeemed card of the batch (lost, stolen); reverses their liability."""
        batch = self.get_object()
        body = VoidReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vouchers.void_batch(self.principal, batch, body.validated_data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data)


# --- cards -------------------------------------------------------------------------------------

# As typed from the card: digits, with the spaces or dashes it is printed with.
SERIAL_PATTERN = r"^[0-9 \-]{12,20}$"
PIN_PATTERN = r"^[0-9 \-]{16,24}$"
SERIAL_HINT = gettext_lazy("A card serial is 12 digits, as printed on the card: 1000 0000 0017.")
PIN_HINT = gettext_lazy("A PIN is 16 digits, under the card's scratch panel.")


class RedemptionSerializer(serializers.Serializer):
    account = AccountNumberField()
    serial = serializers.RegexField(
        SERIAL_PATTERN,
        help_text="The card's serial, as printed (spaces allowed).",
        error_messages={"invalid": SERIAL_HINT},
    )
    pin = serializers.RegexField(
        PIN_PATTERN,
        help_text="The card's 16-digit PIN, uncovered by the customer.",
        error_messages={"invalid": PIN_HINT},
    )
    idempotency_key = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]{1,64}$",
        help_text="Unique per cashier: a retry with the same key returns the first payment.",
    )


class VoucherCardSerializer(serializers.ModelSerializer):
    batch_number = serializers.IntegerField(source="batch.number", read_only=True)
    face_value = serializers.DecimalField(
        source="batch.face_value", max_digits=16, decimal_places=2, read_only=True
    )
    expires_on = serializers.DateField(source="batch.expires_on", read_only=True)
    account_number = serializers.CharField(
        source="payment.account.number", read_only=True, default=None
    )
    locked = serializers.SerializerMethodField()
    locked_until = serializers.SerializerMethodField()

    class Meta:
        model = VoucherCard
        fields = [
            "id", "batch", "batch_number", "serial", "face_value", "expires_on", "state",
            "locked", "locked_until", "payment", "account_number", "redeemed_at", "void_reason",
            "voided_at", "expired_on",
        ]  # fmt: skip
        read_only_fields = fields

    def _lock(self, card: VoucherCard) -> datetime | None:
        """When the card unlocks by itself, if locked: found for a whole page at once."""
        context = cast("dict[str, Any]", self.context)  # the root serializer's, shared
        known: dict[int, datetime | None] = context.setdefault("voucher_locks", {})
        if card.pk not in known:
            page = getattr(self.parent, "instance", None)
            cards = (
                [c for c in page if isinstance(c, VoucherCard)] if isinstance(page, list) else []
            )
            cards = cards if card in cards else [card]
            locks = vouchers.locked_until(cards)
            known.update({c.pk: locks.get(c.pk) for c in cards})
        return known[card.pk]

    def get_locked(self, card: VoucherCard) -> bool:
        """Too many wrong PINs lately: redemption is refused until the hour passes or an
        administrator unlocks it."""
        return self._lock(card) is not None

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_locked_until(self, card: VoucherCard) -> str | None:
        """When a locked card unlocks by itself (an administrator may unlock it sooner)."""
        lock = self._lock(card)
        return serializers.DateTimeField().to_representation(lock) if lock else None


class VoucherCardViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """Recharge cards (never their PINs). Find one by ``serial``; filters: batch, state."""

    permission_resource = "voucher_cards"
    queryset = VoucherCard.objects.select_related("batch", "payment__account")
    serializer_class = VoucherCardSerializer
    filterset_fields = ["batch", "state", "serial"]

    @extend_schema(request=VoidReasonSerializer, responses=VoucherCardSerializer)
    @action(detail=True, methods=["post"], permission_action="void")
    def void(self, request: Request, pk: str | None = None) -> Response:
        """Void an unredeemed card (lost, stolen); reverses its liability once released."""
        card = self.get_object()
        body = VoidReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vouchers.void_card(self.principal, card, body.validated_data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=card.pk)).data)

    @extend_schema(request=None, responses=VoucherCardSerializer)
    @action(detail=True, methods=["post"], permission_action="unlock")
    def unlock(self, request: Request, pk: str | None = None) -> Response:
        """Clear the wrong PINs counted on the card so far."""
        card = vouchers.unlock_card(self.principal, self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=card.pk)).data)


class VoucherRedemptionViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """Recharge cards redeemed: payments of the ``voucher`` channel (the card's serial is their
    external reference). ``POST`` redeems a card at the counter: a payment of the card's face
    value to an account, answered as ``POST /payments/`` answers (201; a retry with the same
    idempotency key, 200). A wrong PIN and an unknown serial get the same answer (400
    ``wrong_pin``, with ``tries_left``: the wrong PINs the serial may still take before it
    locks); 5 wrong PINs lock a card for up to an hour, 20 in an hour stop the caller's
    redemptions. The account is looked up among the sites of the cashier's grant."""

    permission_resource = "voucher_redemptions"
    queryset = payments().filter(channel=Channel.VOUCHER)
    serializer_class = PaymentSerializer
    filterset_fields = ["account", "site", "paid_on"]

    @extend_schema(
        request=RedemptionSerializer, responses={201: PaymentSerializer, 200: PaymentSerializer}
    )
    def create(self, request: Request) -> Response:
        body = RedemptionSerializer(data=request.data, context=self.get_serializer_context())
        if not body.is_valid():
            data = request.data if isinstance(request.data, dict) else {}
            record_failed_attempt(
                self.principal,
                AttemptRequest(
                    channel=Channel.VOUCHER,
                    account_number=str(data.get("account") or "")[:32],
                    idempotency_key=str(data.get("idempotency_key") or "")[:64],
                    external_reference=str(data.get("serial") or "")[:64],
                ),
                AttemptOutcome.INVALID,
                Failure.of(body.errors),
            )
            raise exceptions.ValidationError(body.errors)
        result = vouchers.redeem_card(self.principal, **body.validated_data, now=timezone.now())
        payment = self.get_queryset().get(pk=result.payment.pk)
        return Response(self.get_serializer(payment).data, status=201 if result.created else 200)
