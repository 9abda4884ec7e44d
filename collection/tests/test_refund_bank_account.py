"""The customer's bank account of a transfer refund is personal data: stored encrypted, masked
(``6222 **** **** 2222``) in the API's refunds and closings and in the audit trail, to everyone;
the person who pays the transfer reveals it (``test_refund_reveal``)."""

from __future__ import annotations

import importlib
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import connection

from collection.models import AccountClosing, Refund
from collection.services.closing import Payout, start_closing
from collection.services.refunds import pay_refund
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tests.world import World

pytestmark = pytest.mark.django_db

FULL = "6222000011112222"  # the payee account tests.world gives a transfer refund
MASKED = "6222 **** **** 2222"
REFUNDS = "/api/v1/refunds/"


def _raw(table: str, column: str, row_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [row_id])  # noqa: S608
        return str(cursor.fetchone()[0])


def test_the_bank_account_is_stored_encrypted_and_read_back_in_full(world: World) -> None:
    refund = world.a.refund(channel="bank_transfer")
    stored = _raw("collection_refund", "payee_bank_account", refund.pk)
    assert FULL not in stored and "2222" not in stored
    with world.a.active():
        assert Refund.objects.get(pk=refund.pk).payee_bank_account == FULL


def test_the_audit_trail_keeps_the_bank_account_masked(world: World) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    with world.a.active():
        pay_refund(Principal.for_user(world.alice), refund, payment_reference="TRF-001")
        events = list(AuditEvent.objects.filter(object_type="collection.refund"))
    assert {event.action for event in events} == {
        "refund.requested", "refund.approved", "refund.paid",
    }  # fmt: skip
    requested = next(event for event in events if event.action == "refund.requested")
    assert requested.after["payee_bank_account"] == MASKED
    assert not any(FULL in repr((event.before, event.after)) for event in events)


def test_the_api_lists_and_shows_the_bank_account_masked(world: World) -> None:
    refund = world.a.refund(channel="bank_transfer")  # requested, not approved: nothing to pay
    alice = world.client_for(world.alice)
    listed = alice.get(REFUNDS).json()["results"]
    assert [row["payee_bank_account"] for row in listed] == [MASKED]
    shown = alice.get(f"{REFUNDS}{refund.pk}/").json()
    assert shown["payee_bank_account"] == MASKED
    assert FULL not in alice.get(REFUNDS).content.decode()


def test_the_detail_stays_masked_for_whoever_pays_the_transfer_before_and_after(
    world: World,
) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    url = f"{REFUNDS}{refund.pk}/"
    alice = world.client_for(world.alice)  # a tenant administrator: may pay refunds
    assert alice.get(url).json()["payee_bank_account"] == MASKED
    paid = alice.post(f"{url}pay/", {"payment_reference": "TRF-002"}, format="json")
    assert paid.status_code == 200, paid.content
    assert paid.json()["payee_bank_account"] == MASKED
    assert alice.get(url).json()["payee_bank_account"] == MASKED
    assert FULL not in alice.get(url).content.decode()
    mallory = world.client_for(world.mallory)
    assert mallory.get(url).status_code == 404


def test_a_closing_keeps_its_payout_account_encrypted_and_shows_it_masked(world: World) -> None:
    a = world.a
    account = a.account()
    meter = a.meter(account=account, on_gateway=False)
    a.reading(meter, total=Decimal("10.00"))
    with a.active():
        closing = start_closing(
            Principal.for_user(world.alice), account, reason="迁出",
            taken_at=datetime(2026, 9, 20, 10, tzinfo=ZoneInfo("Asia/Shanghai")),
            values={"total": Decimal("20.00")},
            payout=Payout("bank_transfer", FULL, "工商银行"),
        )  # fmt: skip
        kept = AccountClosing.objects.get(pk=closing.pk)
        assert Payout.of(kept).payee_bank_account == FULL
    assert FULL not in _raw("collection_accountclosing", "payout", closing.pk)
    shown = world.client_for(world.alice).get(f"/api/v1/account-closings/{closing.pk}/")
    assert shown.status_code == 200, shown.content
    assert shown.json()["payout"] == {
        "channel": "bank_transfer", "payee_bank_account": MASKED, "payee_bank": "工商银行",
        "provider": "",
    }  # fmt: skip
    assert FULL not in shown.content.decode()


def test_the_migration_encrypts_bank_accounts_stored_in_clear_before_it_and_back(
    world: World,
) -> None:
    migration = importlib.import_module(
        "collection.migrations.0006_deposit_slip_shift_bank_account_encrypted"
    )
    refund = world.a.refund(channel="bank_transfer")
    closing = world.a.account_closing()
    with connection.cursor() as cursor:  # as rows stood before the migration: in clear
        cursor.execute(
            "UPDATE collection_refund SET payee_bank_account = %s WHERE id = %s", [FULL, refund.pk]
        )
    with world.a.active():
        AccountClosing.objects.filter(pk=closing.pk).update(
            payout={"channel": "bank_transfer", "payee_bank_account": FULL, "payee_bank": "",
                    "provider": ""}
        )  # fmt: skip
        migration.encrypt_bank_accounts(apps, SimpleNamespace(connection=connection))
        assert Refund.objects.get(pk=refund.pk).payee_bank_account == FULL
        assert Payout.of(AccountClosing.objects.get(pk=closing.pk)).payee_bank_account == FULL
    assert FULL not in _raw("collection_refund", "payee_bank_account", refund.pk)
    assert FULL not in _raw("collection_accountclosing", "payout", closing.pk)
    with world.a.active():
        migration.decrypt_bank_accounts(apps, SimpleNamespace(connection=connection))
    assert _raw("collection_refund", "payee_bank_account", refund.pk) == FULL
