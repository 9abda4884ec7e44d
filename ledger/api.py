"""REST endpoints of the ledger: ledger accounts with their cached balances, and journal
entries with their lines (read-only: postings are made by the services that own them)."""

from __future__ import annotations

from rest_framework import serializers

from ledger.models import JournalEntry, JournalLine, LedgerAccount
from tenancy.api_base import ReadOnlyTenantViewSet


class LedgerAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerAccount
        fields = ["id", "kind", "account", "site", "utility", "component", "name", "balance"]
        read_only_fields = fields


class LedgerAccountViewSet(ReadOnlyTenantViewSet):
    """Ledger accounts: each customer account's receivable and prepaid wallet, revenue per
    utility and component, VAT payable. ``balance`` is debit-positive and re-derivable."""

    permission_resource = "ledger"
    queryset = LedgerAccount.objects.all()
    serializer_class = LedgerAccountSerializer
    filterset_fields = ["kind", "account", "site", "utility"]


class JournalLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = JournalLine
        fields = ["id", "ledger_account", "amount", "reference"]
        read_only_fields = fields


class JournalEntrySerializer(serializers.ModelSerializer):
    lines = JournalLineSerializer(many=True, read_only=True)

    class Meta:
        model = JournalEntry
        fields = [
            "id", "source_type", "source_id", "site", "memo", "booked_on", "posted_at",
            "actor_kind", "actor_label", "lines",
        ]  # fmt: skip
        read_only_fields = fields


class JournalEntryViewSet(ReadOnlyTenantViewSet):
    """Journal entries (append-only; every entry's lines sum to zero)."""

    permission_resource = "ledger"
    queryset = JournalEntry.objects.prefetch_related("lines")
    serializer_class = JournalEntrySerializer
    filterset_fields = ["source_type", "source_id", "site", "booked_on"]
