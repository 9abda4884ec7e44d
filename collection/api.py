"""REST endpoints of the collect stage: payments (post, list, reverse), failed payment attempts
(and a bank's report of a rejected one), receipts (document, print the original, reprint) and
what an account owes. ``PrintsReceipts`` gives the receipt's three actions to the deposits'
endpoint too.

Views parse, call one service and render. A payment request that fails validation here is
recorded as a failed attempt before the 400 goes out; the service records the ones it refuses.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.fields import get_error_detail
from rest_framework.request import Request
from rest_framework.response import Response

from collection.documents import receipt_context, render_document
from collection.models import (
    AttemptOutcome,
    Channel,
    DocumentPrint,
    Payment,
    PaymentAllocation,
    PaymentAttempt,
    PaymentState,
    Receipt,
)
from collection.services.allocation import account_due
from collection.services.attempts import (
    AttemptRequest,
    Failure,
    record_failed_attempt,
    report_rejected_payment,
)
from collection.services.errors import PaymentConflict
from collection.services.payments import MAX_PAYMENT, post_payment
from collection.services.receipts import print_receipt, printed_for, reprint_receipt
from collection.services.reversal import reverse_payment
from customers.identifiers import validate_account_number
from customers.models import Account
from tenancy.api_base import (
    ReadOnlyTenantViewSet,
    StrictCharField,
    StrictLineField,
    TenantViewSet,
    request_site_scope,
)
from tenancy.api_plumbing import Conflict, StrictFilterSet
from tenancy.principal import Principal


class RefusesConflicts:
    """Answers a conflict with what was done before (a reused key, a second reversal) 409."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, PaymentConflict):
            exc = Conflict(exc.messages[0], code=exc.code)
        return super().handle_exception(exc)  # type: ignore[misc]  # a viewset's


# --- requests ------------------------------------------------------------------------------


class AccountNumberField(StrictLineField):
    """An account number (户号), looked up among the accounts of the caller's sites: one of
    another tenant or of a site outside the grant answers like one that does not exist."""

    default_error_messages = {"unknown": gettext_lazy("No such account.")}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("help_text", "The payer's account number (户号), with its check digit.")
        super().__init__(**kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        number = super().run_validation(data)
        validate_account_number(number)
        scope = request_site_scope(self.context.get("request"))
        account = Account.objects.for_sites(scope.site_ids_or_none).filter(number=number).first()
        if account is None:
            self.fail("unknown")
        return account

    def to_representation(self, value: Any) -> str:
        return value.number if isinstance(value, Account) else str(value)


# A sign is allowed so that "-1" is refused for its range, like any number out of range.
PLAIN_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class AmountField(serializers.DecimalField):
    """Yuan as typed at a counter or sent by a bank: digits and a point. "1e3" or "1,000.50"
    is a typing error, not 1000 (a decimal parser would take them); an amount out of range
    says the range, not how many digits the column holds."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", 'Yuan, as a string with at most two decimals: "120.50".')
        low = kwargs.pop("min_value", Decimal("0.01"))
        high = kwargs.pop("max_value", MAX_PAYMENT)
        out_of_range = lazy(
            lambda: (
                gettext("An amount is from %(low)s to %(high)s yuan.")
                % {"low": low, "high": f"{high:,}"}
            ),
            str,
        )()
        super().__init__(
            max_digits=10, decimal_places=2, min_value=low, max_value=high,
            error_messages={
                "plain": gettext_lazy(
                    "Write the amount with digits and a point: 1000.50, not 1e3 or 1,000.50."
                ),
                "max_digits": out_of_range,
                "max_whole_digits": out_of_range,
                "max_value": out_of_range,
                "min_value": out_of_range,
            },
            **kwargs,
        )  # fmt: skip

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, str) and not PLAIN_AMOUNT.fullmatch(data.strip()):
            self.fail("plain")
        return super().to_internal_value(data)


class PaymentRequestSerializer(serializers.Serializer):
    account = AccountNumberField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    amount = AmountField()
    idempotency_key = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]{1,64}$",
        help_text="Unique per channel and sender (the cashier, the bank client, the online "
        "provider): a retry with the same key and request returns the first payment (200); "
        "another request under it is refused (409).",
    )
    external_reference = StrictLineField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    provider = serializers.RegexField(
        r"^[a-z0-9_-]{1,32}$",
        required=False,
        allow_blank=True,
        default="",
        help_text="An online payment's provider: wechat, alipay, unionpay…",
    )
    cash_approval = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="A holiday cash approval's id: a cash top-up on a day the bank is closed "
        "needs one (used up by the payment).",
    )


class RejectionSerializer(serializers.Serializer):
    account = AccountNumberField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    amount = AmountField()
    reason = StrictLineField(max_length=300, help_text="Why the payment was not made.")
    external_reference = StrictLineField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    provider = serializers.RegexField(
        r"^[a-z0-9_-]{1,32}$", required=False, allow_blank=True, default=""
    )
    idempotency_key = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]{1,64}$", required=False, allow_blank=True, default=""
    )


class ReversalSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=300)


# --- payments ------------------------------------------------------------------------------


class AllocationSerializer(serializers.ModelSerializer):
    bill_number = serializers.CharField(source="bill.number", read_only=True, default=None)

    class Meta:
        model = PaymentAllocation
        fields = ["bill", "bill_number", "opening", "late_fee", "principal"]
        read_only_fields = fields


class PaymentReceiptSerializer(serializers.ModelSerializer):
    number = serializers.CharField(source="display_number", read_only=True)

    class Meta:
        model = Receipt
        fields = ["id", "number", "issued_at"]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    account_number = serializers.CharField(source="account.number", read_only=True)
    state = serializers.SerializerMethodField()
    allocations = AllocationSerializer(many=True, read_only=True, source="standing_allocations")
    receipt = serializers.SerializerMethodField()
    reversal = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = [
            "id", "account", "account_number", "site", "channel", "provider", "amount",
            "principal", "late_fees", "credit_used", "surplus", "external_reference",
            "idempotency_key", "paid_on", "received_at", "actor_label", "state", "entry",
            "allocations", "receipt", "reversal", "shift",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=PaymentState.choices))
    def get_state(self, payment: Payment) -> str:
        return PaymentState.REVERSED if payment.reversals.all() else PaymentState.POSTED

    @extend_schema_field(PaymentReceiptSerializer(allow_null=True))
    def get_receipt(self, payment: Payment) -> dict[str, Any] | None:
        receipts = payment.receipts.all()
        return PaymentReceiptSerializer(receipts[0]).data if receipts else None

    @extend_schema_field(
        serializers.DictField(allow_null=True, help_text="reason, reversed_on, reversed_by, entry")
    )
    def get_reversal(self, payment: Payment) -> dict[str, Any] | None:
        reversals = payment.reversals.all()
        if not reversals:
            return None
        reversal = reversals[0]
        return {
            "reason": reversal.reason,
            "reversed_on": reversal.reversed_on.isoformat(),
            "reversed_at": serializers.DateTimeField().to_representation(reversal.reversed_at),
            "reversed_by": reversal.actor_label,
            "entry": reversal.entry_id,
        }


class PaymentFilter(StrictFilterSet):
    state = django_filters.ChoiceFilter(choices=PaymentState.choices, method="filter_state")
    account_number = django_filters.CharFilter(field_name="account__number")
    paid_from = django_filters.DateFilter(field_name="paid_on", lookup_expr="gte")
    paid_to = django_filters.DateFilter(field_name="paid_on", lookup_expr="lte")

    class Meta:
        model = Payment
        fields = [
            "account", "account_number", "channel", "site", "paid_on", "paid_from", "paid_to",
            "state",
        ]  # fmt: skip

    def filter_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.standing() if value == PaymentState.POSTED else queryset.reversed()  # type: ignore[attr-defined]


def payments() -> QuerySet[Payment]:
    return Payment.objects.select_related("account").prefetch_related(
        "receipts",
        "reversals",
        Prefetch(
            "allocations",
            queryset=PaymentAllocation.objects.filter(reversal__isnull=True)
            .select_related("bill")
            .order_by("pk"),
            to_attr="standing_allocations",
        ),
    )


class PaymentViewSet(RefusesConflicts, ReadOnlyTenantViewSet):
    """Payments: each allocated to the account's oldest open bills (a bill's late fee before
    its principal), the rest to the wallet, posted once with its receipt. ``POST`` takes one
    (cashiers at the counter; banks, online providers and terminals with their token), with an
    idempotency key: a retry returns the first payment. Filters: account, account_number,
    channel, site, paid_on, paid_from, paid_to, state (posted, reversed)."""

    permission_resource = "payments"
    queryset = payments()
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter

    @extend_schema(
        request=PaymentRequestSerializer,
        responses={201: PaymentSerializer, 200: PaymentSerializer},
    )
    def create(self, request: Request) -> Response:
        """Take a payment (201), or answer a retry of the same request with the payment posted
        first (200). Refused requests are recorded as failed attempts."""
        try:
            data = request.data
        except exceptions.APIException as exc:  # malformed JSON, too large, not JSON
            failure = Failure(str(exc.get_codes())[:64], str(exc.detail)[:500], {})
            record_failed_attempt(self.principal, AttemptRequest(), AttemptOutcome.INVALID, failure)
            raise
        body = PaymentRequestSerializer(data=data, context=self.get_serializer_context())
        if not body.is_valid():
            record_failed_attempt(
                self.principal,
                AttemptRequest.from_data(data),
                AttemptOutcome.INVALID,
                Failure.of(body.errors),
            )
            raise exceptions.ValidationError(body.errors)
        result = post_payment(self.principal, **body.validated_data)
        payment = self.get_queryset().get(pk=result.payment.pk)
        return Response(self.get_serializer(payment).data, status=201 if result.created else 200)

    @extend_schema(request=ReversalSerializer, responses=PaymentSerializer)
    @action(detail=True, methods=["post"], permission_action="reverse")
    def reverse(self, request: Request, pk: str | None = None) -> Response:
        """冲正: on its business day by a supervisor of its site, later by finance; never by
        who took it. The bills it paid are open again and its receipt is void."""
        payment = self.get_object()
        body = ReversalSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reverse_payment(self.principal, payment, body.validated_data["reason"])
        return Response(self.get_serializer(self.get_queryset().get(pk=payment.pk)).data)


# --- failed attempts -----------------------------------------------------------------------


class PaymentAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentAttempt
        fields = [
            "id", "site", "account", "payment", "outcome", "code", "reason", "fields", "channel",
            "account_number", "amount", "idempotency_key", "external_reference", "source",
            "request_id", "actor_kind", "actor_label", "attempted_at",
        ]  # fmt: skip
        read_only_fields = fields


class PaymentAttemptViewSet(ReadOnlyTenantViewSet):
    """Payment attempts that failed, with the reason: refused requests (invalid, a rule, a
    reused key) and rejections a bank or provider reported. ``POST`` reports a rejection (a
    direct debit refused, a card declined). Filters: account, outcome, channel, site."""

    permission_resource = "payment_attempts"
    queryset = PaymentAttempt.objects.all()
    serializer_class = PaymentAttemptSerializer
    filterset_fields = ["account", "outcome", "channel", "site", "code"]

    @extend_schema(request=RejectionSerializer, responses={201: PaymentAttemptSerializer})
    def create(self, request: Request) -> Response:
        body = RejectionSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        attempt = report_rejected_payment(self.principal, **body.validated_data)
        return Response(self.get_serializer(attempt).data, status=201)


# --- receipts ------------------------------------------------------------------------------


class PrintsSerializerMixin(serializers.Serializer):
    """Whether a receipt's original was printed, and how many reprints (重打) followed."""

    original_printed = serializers.SerializerMethodField()
    reprints = serializers.SerializerMethodField()

    def get_original_printed(self, document: Any) -> bool:
        return bool(document.prints.all())

    def get_reprints(self, document: Any) -> int:
        return sum(1 for printed in document.prints.all() if not printed.is_original)


class ReceiptSerializer(PrintsSerializerMixin, serializers.ModelSerializer):
    number = serializers.CharField(source="display_number", read_only=True)
    account_number = serializers.CharField(source="payment.account.number", read_only=True)
    amount = serializers.DecimalField(
        source="payment.amount", max_digits=16, decimal_places=2, read_only=True
    )
    void = serializers.SerializerMethodField()

    class Meta:
        model = Receipt
        fields = [
            "id", "number", "payment", "site", "account_number", "amount", "issued_at", "void",
            "original_printed", "reprints",
        ]  # fmt: skip
        read_only_fields = fields

    def get_void(self, receipt: Receipt) -> bool:
        return bool(receipt.payment.reversals.all())


DOCUMENT_PARAMETERS = [
    OpenApiParameter("lang", str, enum=["zh-hans", "en"], description="Language"),
    OpenApiParameter("as", str, enum=["pdf", "html"], description="Document format"),
]
PRINT_PARAMETER = OpenApiParameter(
    "print",
    int,
    description="A print recorded by the caller in the last minutes (the id the print or "
    "reprint action answers in X-Receipt-Print): its copies, unmarked or marked 重打. "
    "Without it every copy is marked view-only (仅供查看).",
)


def _document_format(request: Request) -> tuple[str, str]:
    """The language and format asked for, in the query (or, for a print, the body)."""
    asked: dict[str, Any] = dict(request.query_params.items())
    if request.method == "POST" and isinstance(request.data, dict):
        asked.update(request.data)
    language = asked.get("lang", "zh-hans")
    kind = asked.get("as", "pdf")
    if language not in ("zh-hans", "en") or kind not in ("pdf", "html"):
        raise exceptions.ValidationError({"lang": ["zh-hans or en"], "as": ["pdf or html"]})
    return language, kind


class PrintsReceipts(RefusesConflicts):
    """A receipt's document (view-only unless it names the caller's recent print), the
    original's print (once) and reprints (重打), all three answering the document. The print
    actions record and audit (``collection.services.receipts``); a second original, or a
    reprint before the original, is refused 409."""

    principal: Principal
    receipt_context: Any  # (document, language, print) -> the document's context
    record_original: Any  # (actor, document) -> the original's print
    record_reprint: Any  # (actor, document) -> a reprint
    receipt_number: Any  # (document) -> the number printed on it

    def get_object(self) -> Any:
        return super().get_object()  # type: ignore[misc]  # a viewset's

    def _answer(
        self, request: Request, document: Any, printed: DocumentPrint | None
    ) -> HttpResponse:
        language, kind = _document_format(request)
        context = type(self).receipt_context(document, language, printed)
        body, content_type = render_document(context, as_pdf=kind == "pdf")
        response = HttpResponse(body, content_type=content_type)
        if content_type == "application/pdf":
            filename = f"receipt-{type(self).receipt_number(document)}.pdf"
            response["Content-Disposition"] = f'inline; filename="{filename}"'
        if printed is not None:
            response["X-Receipt-Print"] = str(printed.pk)
        return response

    @extend_schema(
        parameters=[*DOCUMENT_PARAMETERS, PRINT_PARAMETER],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], permission_action="view")
    def document(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The three copies: PDF (default) or HTML, Chinese (default) or English; marked
        view-only (仅供查看) unless ``print`` names the caller's recent print."""
        document = self.get_object()
        printed = printed_for(document.prints.all(), request.query_params.get("print"),
                              self.principal)  # fmt: skip
        return self._answer(request, document, printed)

    @extend_schema(
        parameters=DOCUMENT_PARAMETERS,
        request=None,
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(
        detail=True, methods=["post"], url_path="print", url_name="print", permission_action="print"
    )
    def print_original(self, request: Request, pk: str | None = None) -> HttpResponse:
        """Print the original, once: recorded and audited; answers its copies (the print's id
        in the X-Receipt-Print header). 409 when it was printed already: reprint instead."""
        document = self.get_object()
        _document_format(request)  # bad input is refused before anything is recorded
        printed = type(self).record_original(self.principal, document)
        return self._answer(request, document, printed)

    @extend_schema(
        parameters=DOCUMENT_PARAMETERS,
        request=None,
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["post"], permission_action="reprint")
    def reprint(self, request: Request, pk: str | None = None) -> HttpResponse:
        """Reprint: recorded and audited, every copy marked 重打 with its number. 409 before
        the original is printed."""
        document = self.get_object()
        _document_format(request)
        printed = type(self).record_reprint(self.principal, document)
        return self._answer(request, document, printed)


class ReceiptViewSet(PrintsReceipts, ReadOnlyTenantViewSet):
    """Receipts, numbered per tenant without gaps; void while their payment is reversed (they
    keep their number). Each prints in three copies: customer, stub, bookkeeping; the original
    once, then reprints (重打)."""

    permission_resource = "receipts"
    queryset = Receipt.objects.select_related("payment__account").prefetch_related(
        "payment__reversals", "prints"
    )
    serializer_class = ReceiptSerializer
    filterset_fields = ["payment", "site", "number"]
    receipt_context = staticmethod(receipt_context)
    record_original = staticmethod(print_receipt)
    record_reprint = staticmethod(reprint_receipt)
    receipt_number = staticmethod(lambda receipt: receipt.display_number)


# --- what an account owes ------------------------------------------------------------------


class DueItemSerializer(serializers.Serializer):
    bill = serializers.IntegerField(source="bill_id", allow_null=True)
    opening = serializers.IntegerField(source="opening_id", allow_null=True)
    number = serializers.CharField()
    period = serializers.CharField()
    due_date = serializers.DateField(allow_null=True)
    total = serializers.DecimalField(max_digits=16, decimal_places=2)
    principal = serializers.DecimalField(max_digits=16, decimal_places=2)
    late_fee = serializers.DecimalField(max_digits=16, decimal_places=2)


class DueSerializer(serializers.Serializer):
    account = serializers.CharField()
    payment_mode = serializers.CharField()
    status = serializers.CharField()
    as_of = serializers.DateField()
    items = DueItemSerializer(many=True)
    principal = serializers.DecimalField(max_digits=16, decimal_places=2)
    late_fees = serializers.DecimalField(max_digits=16, decimal_places=2)
    credit = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="Credit the next payment uses for the bills."
    )
    wallet = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        help_text="The wallet: a prepaid balance, or a postpaid account's credit on account "
        "(negative: the customer owes it).",
    )
    amount_due = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        help_text="What settles every open item today after the credit, and what the wallet "
        "is owed.",
    )


class AccountDueViewSet(TenantViewSet):
    """What an account owes today, for the counter and the banks."""

    permission_resource = "payments"
    queryset = Account.objects.all()
    lookup_field = "number"
    lookup_value_regex = r"[^/]+"
    serializer_class = DueSerializer

    @extend_schema(responses=DueSerializer)
    @action(detail=True, methods=["get"], permission_action="due")
    def due(self, request: Request, number: str | None = None) -> Response:
        """Open bills oldest first, each with its principal and its late fee as of today (the
        tenant's date), the credit a payment would use, the wallet, and the amount due."""
        try:
            validate_account_number(self.kwargs[self.lookup_field])
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"number": get_error_detail(exc)}) from exc
        account = self.get_object()
        tenant = self.principal.tenant
        assert tenant is not None
        today = timezone.localdate(timezone=tenant.zone)
        position = account_due(account, today)
        return Response(
            DueSerializer(
                {
                    "account": account.number,
                    "payment_mode": account.payment_mode,
                    "status": account.status,
                    "as_of": today,
                    "items": position.items,
                    "principal": position.principal,
                    "late_fees": position.late_fees,
                    "credit": position.credit,
                    "wallet": -position.wallet,
                    "amount_due": position.amount_due,
                }
            ).data
        )
