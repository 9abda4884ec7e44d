"""Parallel redemptions of one recharge card on PostgreSQL, threads with connections of their
own released together: exactly one succeeds and posts, the others are refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from collection.models import Channel, Payment, VoucherCard, VoucherCardState
from collection.services import vouchers
from collection.services.errors import PaymentConflict
from collection.tests.test_vouchers import admin
from ledger.checks import check_ledger
from ledger.models import JournalEntry, LedgerAccount, LedgerKind
from tenancy.context import use_tenant
from tests.concurrency import run_together
from tests.world import World, unique

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_redemptions_of_one_card_post_exactly_once(world: World) -> None:
    a = world.a
    with a.active():
        by = admin(a)
        batch = vouchers.generate_batch(
            by, face_value=Decimal("100.00"), count=1,
            expires_on=timezone.localdate() + timedelta(days=90),
        )  # fmt: skip
        [row] = vouchers.download_pins(by, batch).content.splitlines()[1:]
        serial, pin = (part.replace(" ", "") for part in row.split(",")[1:3])
        vouchers.release_batch(by, batch)
        accounts = [a.account(payment_mode="prepaid") for _ in range(8)]
        cashiers = [a.cashier() for _ in range(8)]

    def redeem(index: int) -> int:
        return vouchers.redeem_card(
            cashiers[index], account=accounts[index], serial=serial, pin=pin,
            idempotency_key=unique("k"),
        ).payment.pk  # fmt: skip

    won, errors = run_together(8, redeem, a.tenant)
    assert len(won) == 1, errors
    assert len(errors) == 7
    assert all(isinstance(e, PaymentConflict) and e.code == "card_redeemed" for e in errors)
    with use_tenant(a.tenant):
        assert Payment.objects.filter(channel=Channel.VOUCHER).count() == 1
        assert JournalEntry.objects.filter(source_type="payment").count() == 1
        card = VoucherCard.objects.get(serial=serial)
        assert (card.state, card.payment_id) == (VoucherCardState.REDEEMED, won[0])
        wallets = LedgerAccount.objects.filter(kind=LedgerKind.WALLET, balance__lt=0)
        assert [w.balance for w in wallets] == [Decimal("-100.00")]  # one customer topped up
        liability = LedgerAccount.objects.get(kind=LedgerKind.VOUCHER)
        assert liability.balance == Decimal("0.00")  # 100.00 released, 100.00 redeemed
    assert check_ledger(a.tenant) == []
