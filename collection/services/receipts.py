"""Receipts: numbered per tenant with no gaps, reprinted as marked copies.

The number is taken inside the payment's own transaction, from the tenant's ``receipt`` counter
row (``tenancy.sequences.take_next``), as the payment's last step: the row stays locked until the
payment commits, so concurrent payments queue there for the shortest time (the payment's shared
ledger accounts, a bank's clearing account and late-fee revenue, are locked and moved in the
same round trip, just before it: see ``issue_receipt``), and a payment that fails before it, or
rolls back after it, takes no number (the counter's update is rolled back with it). A receipt
is never changed: it is void while its payment is reversed, and keeps its number. A reprint is
a row of its own, numbered per receipt, marked on the copy and audited.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max

from collection.models import Payment, Receipt, ReceiptPrint
from ledger.services import apply_balances, balances_sql
from tenancy import prepared
from tenancy.audit import AuditAction, audit_event_insert, record_audit
from tenancy.models import AuditEvent, Tenant
from tenancy.principal import Principal
from tenancy.sequences import next_number_sql, take_next

RECEIPT_SEQUENCE = "receipt"


def issue_receipt(
    tenant: Tenant,
    payment: Payment,
    issued_at: datetime,
    audit: AuditEvent | None = None,
    balances: dict[int, Decimal] | None = None,
) -> Receipt:
    """The payment's receipt with the tenant's next number; call it last in the payment's
    transaction (the counter row stays locked until the transaction ends).

    On PostgreSQL the checks deferred to the commit (the foreign keys of every row the payment
    wrote, the journal entry's zero sum) are run first, when the payment's transaction is the
    outermost one: run at the commit they would hold up every other payment of the tenant
    queued on the counter. Nested in a caller's transaction, they wait for its commit as
    usual (the caller may have rows pending that they need).

    One statement takes the number, writes the receipt and the payment's audit event
    (``audit``, built by the caller, its ``after`` given the receipt's number), so the
    counter's lock is held for that statement and the commit.

    ``balances``: the payment's ledger movements, whose balance step its posting deferred
    (``ledger.services.post_entries(..., defer_balances=...)``). They are taken in the same
    round trip, before the deferred checks and the counter (the lock order: the customer's
    rows, locked first by the payment, then the shared accounts in primary-key order, then
    the counter), so a shared account's row (a bank's clearing account, late-fee
    revenue) is locked only from there to the commit, as the counter's is."""
    if connection.vendor != "postgresql":
        apply_balances(tenant, balances or {})
        number = take_next(tenant, RECEIPT_SEQUENCE)
        receipt = Receipt.objects.create(
            tenant=tenant, payment=payment, site_id=payment.site_id, number=number,
            issued_at=issued_at,
        )  # fmt: skip
        if audit is not None:
            audit.after = {**(audit.after or {}), "receipt": receipt.display_number}
            audit.save()
        return receipt
    with connection.cursor() as cursor:
        # The deferred checks run in the same round trip, before the counter's row is taken,
        # and after the shared ledger rows are locked: the lines' foreign-key checks take a
        # key-share lock on their ledger accounts, which would stand in the way of another
        # payment's FOR UPDATE of them while it waits for ours (a deadlock).
        checks = "SET CONSTRAINTS ALL IMMEDIATE; " if not connection.savepoint_ids else ""
        moved = balances_sql(tenant, balances or {})
        counter_sql, counter_params = next_number_sql(tenant, RECEIPT_SEQUENCE)
        table = Receipt._meta.db_table
        sql = (
            f"WITH counter AS ({counter_sql}), receipt AS ("  # noqa: S608 - model names
            f"INSERT INTO {table} (tenant_id, payment_id, site_id, number, issued_at) "
            "SELECT %s, %s, %s, number, %s FROM counter RETURNING id, number)"
        )
        params = [*moved.params, *counter_params, tenant.pk, payment.pk, payment.site_id, issued_at]
        if audit is not None:
            audited_sql, audited_params = audit_event_insert(
                audit, "jsonb_build_object('receipt', lpad(number::text, 10, '0'))", "receipt"
            )
            sql += f", audited AS ({audited_sql})"
            params += audited_params
        prepared.execute(
            cursor,
            f"{moved.sql}{checks}{sql} SELECT id, number, {moved.check} FROM receipt",  # noqa: S608
            [*params, *moved.check_params],
        )
        receipt_id, number, found = cursor.fetchone()
    moved.verify(found)
    receipt = Receipt(
        pk=receipt_id, tenant=tenant, payment=payment, site_id=payment.site_id, number=number,
        issued_at=issued_at,
    )  # fmt: skip
    receipt._state.adding, receipt._state.db = False, connection.alias
    return receipt


def reprint_receipt(actor: Principal, receipt: Receipt) -> ReceiptPrint:
    """Record a reprint (重打) of the receipt: the copy is marked with its number."""
    tenant = actor.tenant
    assert tenant is not None
    with transaction.atomic():
        receipt = Receipt.objects.select_for_update().get(pk=receipt.pk)
        last = ReceiptPrint.objects.filter(receipt=receipt).aggregate(last=Max("copy"))["last"]
        printed = ReceiptPrint.objects.create(
            tenant=tenant,
            receipt=receipt,
            copy=(last or 0) + 1,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label[:200],
        )
        record_audit(
            actor,
            AuditAction.RECEIPT_REPRINTED,
            receipt,
            after={"number": receipt.display_number, "reprint": printed.copy},
        )
    return printed
