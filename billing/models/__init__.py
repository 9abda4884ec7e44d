"""Billing models: tariffs and their assignments, common areas, bill runs, bills with their
lines and review, and prepaid charges."""

from billing.models.bills import (
    Bill,
    BillCheck,
    BillKind,
    BillLine,
    BillRun,
    BillRunShard,
    BillState,
    FlaggedBill,
    OpeningBalance,
    PrepaidCharge,
    ReviewState,
    RunState,
)
from billing.models.tariffs import (
    BillingSettings,
    CommonArea,
    CommonAreaMember,
    SharingMethod,
    Tariff,
    TariffAssignment,
    TariffVersion,
)

__all__ = [
    "Bill",
    "BillCheck",
    "BillKind",
    "BillLine",
    "BillRun",
    "BillRunShard",
    "BillState",
    "BillingSettings",
    "CommonArea",
    "CommonAreaMember",
    "FlaggedBill",
    "OpeningBalance",
    "PrepaidCharge",
    "ReviewState",
    "RunState",
    "SharingMethod",
    "Tariff",
    "TariffAssignment",
    "TariffVersion",
]
