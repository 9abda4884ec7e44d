"""Channels: who takes which, whose keys a payment's key is unique among, and the ledger
account that receives the money (created on first use, one per holder)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from collection.services.channels import check_channel, payment_source, receiving_account
from ledger.models import LedgerAccount, LedgerKind
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld

pytestmark = pytest.mark.usefixtures("in_tenant_a")


def test_each_cashier_bank_and_provider_has_its_own_receiving_account(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    bob, eve = a.cashier(), a.cashier()
    bank = Principal.for_api_client(a.api_client((Role.CASHIER, None))[0])
    tenant = a.tenant
    cash_bob = receiving_account(tenant, bob, "counter_cash", "")
    assert receiving_account(tenant, bob, "counter_cash", "") == cash_bob
    assert receiving_account(tenant, eve, "counter_cash", "") != cash_bob
    card = receiving_account(tenant, bob, "counter_card", "")
    assert receiving_account(tenant, eve, "counter_card", "") == card  # one card acquirer
    clearing = receiving_account(tenant, bank, "bank_collection", "")
    assert receiving_account(tenant, bank, "bank_debit", "") == clearing
    wechat = receiving_account(tenant, bank, "online", "wechat")
    assert receiving_account(tenant, bank, "online", "alipay") != wechat
    rows = {row.pk: row for row in LedgerAccount.objects.filter(account=None)}
    assert (rows[cash_bob].kind, rows[cash_bob].holder) == (LedgerKind.CASH, f"user:{bob.id}")
    assert rows[cash_bob].name == f"库存现金 收费员 {bob.label}"
    assert (rows[clearing].kind, rows[clearing].holder) == ("clearing", f"client:{bank.id}")
    assert rows[wechat].holder == "provider:wechat"
    assert all(row.balance == Decimal("0.00") for row in rows.values())


def test_staff_take_the_counter_and_integrations_the_rest(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    bank = Principal.for_api_client(a.api_client((Role.CASHIER, None))[0])
    for channel in ("counter_cash", "counter_card"):
        check_channel(cashier, channel, "")
        with pytest.raises(ValidationError):
            check_channel(bank, channel, "")
    for channel in ("bank_collection", "bank_debit", "terminal"):
        check_channel(bank, channel, "")
        with pytest.raises(ValidationError):
            check_channel(cashier, channel, "")
    check_channel(bank, "online", "alipay")
    with pytest.raises(ValidationError):
        check_channel(bank, "online", "")
    for actor in (cashier, bank, a.system):
        with pytest.raises(ValidationError):
            check_channel(actor, "voucher", "")
    with pytest.raises(ValidationError):
        check_channel(a.system, "counter_cash", "")  # a scheduled job takes no money


def test_keys_are_unique_per_cashier_per_client_and_per_online_provider(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    cashier = a.cashier()
    bank = Principal.for_api_client(a.api_client((Role.CASHIER, None))[0])
    assert payment_source(cashier, "counter_cash", "") == f"user:{cashier.id}"
    assert payment_source(bank, "bank_debit", "") == f"client:{bank.id}"
    assert payment_source(bank, "online", "wechat") == "provider:wechat"
