"""What a payment costs the database, pinned: a regression that adds a statement to the path
every payment takes (a lookup per ledger account, an ORM read per open item, an audit write of
its own under the receipt counter's lock) fails here and says which statements it saw.

The path of a payment on an account that has paid before (its wallet exists), through a bank
(an API client, whose clearing account exists), paying a bill overdue (a late fee) and part of
the next one."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from collection.models import Payment, PaymentAllocation, Receipt
from collection.services.payments import post_payment
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World, unique

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The statements of one payment, in order, as Django logs them (BEGIN and COMMIT too).
EXPECTED = [
    "BEGIN",
    "WITH customer AS",  # receivable and wallet locked, receiving and late-fee ids read
    "SELECT a.status",  # the account's status, the key's earlier payment, two new ids
    "SELECT (SELECT json_agg",  # open items: bills, allocations, go-live arrears
    "WITH part0 AS (INSERT INTO ledger_journalentry",  # the entry and its lines
    "WITH part0 AS (INSERT INTO collection_payment",  # the payment and its allocations
    # One round trip: the entry's ledger accounts locked in key order and their cached
    # balances moved (deferred by the posting to here, so the shared clearing and late-fee
    # rows are held only to the commit); the deferred checks; the receipt number, receipt and
    # audit event.
    "SELECT id FROM ledger_ledgeraccount",
    "COMMIT",
]
# The parts of that last round trip, in this order (the lock order: shared accounts, then the
# receipt counter).
LAST = [
    "SELECT id FROM ledger_ledgeraccount WHERE tenant_id =",
    "ORDER BY id FOR UPDATE;",
    "UPDATE ledger_ledgeraccount AS la SET balance = la.balance + v.amount",
    "SET CONSTRAINTS ALL IMMEDIATE;",
    "WITH counter AS (INSERT INTO tenancy_sequence",
    "INSERT INTO collection_receipt",
    "INSERT INTO tenancy_auditevent",
]


def _statements(queries: list[dict[str, str]]) -> list[str]:
    """The statements sent, as the server ran them: a prepared statement's ``EXECUTE`` as the
    text it was prepared with (``tenancy.prepared``), several in one round trip joined as they
    were sent. A ``PREPARE`` is left out: it is sent once per statement and connection (the
    first payment of its shape there), not per payment."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        texts = {name: re.sub(r"^PREPARE \w+ AS ", "", text) for name, text in cursor.fetchall()}
    seen = []
    for query in queries:
        sql = " ".join(query["sql"].split())
        if sql.startswith("PREPARE "):
            continue
        parts = [
            texts[match.group(1)] if (match := re.match(r"EXECUTE (\w+)", part)) else part
            for part in sql.split("; ")
        ]
        seen.append(" ".join("; ".join(parts).split()))
    return seen


def test_a_payment_takes_eight_statements(world: World) -> None:
    a = world.a
    account = a.account(customer_class="residential")
    today = timezone.localdate()
    overdue = a.issued_bill(account, "100.00", today - timedelta(days=10), period="2026-09")
    current = a.issued_bill(account, "80.00", today + timedelta(days=5), period="2026-10")
    client, _token = a.api_client((Role.CASHIER, None))
    bank = Principal.for_api_client(client)
    with a.active():
        # The first payment creates the wallet and the bank's clearing account.
        post_payment(
            bank, account=account, channel="bank_collection", amount=Decimal("0.50"),
            idempotency_key=unique("k"),
        )  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            paid = post_payment(
                bank, account=account, channel="bank_collection", amount=Decimal("150.00"),
                idempotency_key=unique("k"),
            ).payment  # fmt: skip
        seen = _statements(captured.captured_queries)
        assert len(seen) == len(EXPECTED), "\n".join(seen)
        for statement, start in zip(seen, EXPECTED, strict=True):
            assert statement.startswith(start), "\n".join(seen)
        last = seen[-2]
        where = [last.find(part) for part in LAST]
        assert -1 not in where and where == sorted(where), last
        # What they wrote. 10 days overdue at 1‰ a day on 100.00 is 1.00 yuan of late fee (the
        # least a fee is); the first payment's 0.50 paid half of it. This one: the other 0.50,
        # then the overdue bill's 100.00, then 49.50 of the current bill: 150.00.
        payment = Payment.objects.get(pk=paid.pk)
        assert payment.amount == Decimal("150.00")
        parts = list(
            PaymentAllocation.objects.filter(payment=payment)
            .order_by("pk")
            .values_list("bill_id", "late_fee", "principal")
        )
        assert parts == [
            (overdue.pk, Decimal("0.50"), Decimal("100.00")),
            (current.pk, Decimal("0.00"), Decimal("49.50")),
        ]
        receipt = Receipt.objects.get(payment=payment)
        event = AuditEvent.objects.get(action="payment.posted", object_id=str(payment.pk))
        assert event.after["receipt"] == receipt.display_number == f"{receipt.number:010d}"
        assert event.actor_id == client.pk
