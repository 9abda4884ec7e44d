"""The ``/api/v1/`` router: every API endpoint is registered here."""

from rest_framework.routers import SimpleRouter

from billing.api import (
    BillingSettingsViewSet,
    BillRunViewSet,
    BillViewSet,
    CommonAreaViewSet,
    FlaggedBillViewSet,
    OpeningBalanceViewSet,
    PrepaidChargeViewSet,
    TariffAssignmentViewSet,
    TariffVersionViewSet,
    TariffViewSet,
)
from collection.api import (
    AccountDueViewSet,
    PaymentAttemptViewSet,
    PaymentViewSet,
    ReceiptViewSet,
)
from collection.api_refunds import (
    AccountClosingViewSet,
    DepositPolicyViewSet,
    DepositViewSet,
    RefundViewSet,
)
from collection.api_shifts import (
    CashApprovalViewSet,
    CashHandoverViewSet,
    CollectionPolicyViewSet,
    ShiftViewSet,
)
from collection.api_vouchers import (
    VoucherBatchViewSet,
    VoucherCardViewSet,
    VoucherRedemptionViewSet,
)
from customers.api import AccountViewSet, ContactViewSet, CustomerViewSet, PremiseViewSet
from ledger.api import JournalEntryViewSet, LedgerAccountViewSet
from metering.api import (
    GatewayViewSet,
    MeterCommandViewSet,
    MeterEventViewSet,
    MeterProfileViewSet,
    MeterViewSet,
    ReadingCompletenessViewSet,
    ReadingViewSet,
)
from tenancy.api import (
    ApiClientViewSet,
    AuditEventViewSet,
    CalendarDayViewSet,
    CurrentTenantViewSet,
    SiteViewSet,
    StaffViewSet,
    TransformerAreaViewSet,
)
from verification.api import (
    CorrectionViewSet,
    LineLossViewSet,
    PeriodViewSet,
    VerificationQueueViewSet,
    VerificationSettingsViewSet,
)

router = SimpleRouter()
router.register("tenants", CurrentTenantViewSet, basename="tenant")
router.register("sites", SiteViewSet, basename="site")
router.register("transformer-areas", TransformerAreaViewSet, basename="transformer-area")
router.register("calendar", CalendarDayViewSet, basename="calendar-day")
router.register("staff", StaffViewSet, basename="staff")
router.register("api-clients", ApiClientViewSet, basename="api-client")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("customers", CustomerViewSet, basename="customer")
router.register("accounts", AccountViewSet, basename="account")
router.register("premises", PremiseViewSet, basename="premise")
router.register("contacts", ContactViewSet, basename="contact")
router.register("gateways", GatewayViewSet, basename="gateway")
router.register("meters", MeterViewSet, basename="meter")
router.register("meter-profiles", MeterProfileViewSet, basename="meter-profile")
router.register("readings", ReadingViewSet, basename="reading")
router.register("reading-completeness", ReadingCompletenessViewSet, basename="reading-completeness")
router.register("meter-events", MeterEventViewSet, basename="meter-event")
router.register("meter-commands", MeterCommandViewSet, basename="meter-command")
router.register("verification-queue", VerificationQueueViewSet, basename="verification-item")
router.register("reading-corrections", CorrectionViewSet, basename="reading-correction")
router.register("period-consumptions", PeriodViewSet, basename="period-consumption")
router.register("line-losses", LineLossViewSet, basename="line-loss")
router.register(
    "verification-settings", VerificationSettingsViewSet, basename="verification-settings"
)
router.register("tariffs", TariffViewSet, basename="tariff")
router.register("tariff-versions", TariffVersionViewSet, basename="tariff-version")
router.register("tariff-assignments", TariffAssignmentViewSet, basename="tariff-assignment")
router.register("common-areas", CommonAreaViewSet, basename="common-area")
router.register("billing-settings", BillingSettingsViewSet, basename="billing-settings")
router.register("bill-runs", BillRunViewSet, basename="bill-run")
router.register("bills", BillViewSet, basename="bill")
router.register("flagged-bills", FlaggedBillViewSet, basename="flagged-bill")
router.register("prepaid-charges", PrepaidChargeViewSet, basename="prepaid-charge")
router.register("opening-balances", OpeningBalanceViewSet, basename="opening-balance")
router.register("ledger-accounts", LedgerAccountViewSet, basename="ledger-account")
router.register("journal-entries", JournalEntryViewSet, basename="journal-entry")
router.register("payments", PaymentViewSet, basename="payment")
router.register("payment-attempts", PaymentAttemptViewSet, basename="payment-attempt")
router.register("receipts", ReceiptViewSet, basename="receipt")
router.register("voucher-batches", VoucherBatchViewSet, basename="voucher-batch")
router.register("voucher-cards", VoucherCardViewSet, basename="voucher-card")
router.register("voucher-redemptions", VoucherRedemptionViewSet, basename="voucher-redemption")
router.register("accounts", AccountDueViewSet, basename="account-due")
router.register("shifts", ShiftViewSet, basename="shift")
router.register("cash-handovers", CashHandoverViewSet, basename="cash-handover")
router.register("cash-approvals", CashApprovalViewSet, basename="cash-approval")
router.register("collection-policy", CollectionPolicyViewSet, basename="collection-policy")
router.register("deposit-policies", DepositPolicyViewSet, basename="deposit-policy")
router.register("deposits", DepositViewSet, basename="deposit")
router.register("refunds", RefundViewSet, basename="refund")
router.register("account-closings", AccountClosingViewSet, basename="account-closing")
