"""Receipts: numbered per tenant with no gaps, reprinted as marked copies.

The number is taken inside the payment's own transaction, from the tenant's ``receipt`` counter
row (``tenancy.sequences.take_next``), as the payment's last step: the row stays locked until the
payment commits, so concurrent payments queue there for the shortest time (the payment's shared
ledger accounts, a bank's clearing account and late-fee revenue, are locked and moved in the
same round trip, just before it: see ``issue_receipt``), and a payment that fails before it, or
rolls back after it, takes no number (the counter's update is rolled back with it). A receipt
is never changed: it is void while its payment is reversed, and keeps its number.

**Printing.** Payment receipts and deposit receipts (``Y…``) print by the same rule. Every print
is a row of its own (``ReceiptPrint``, ``DepositPrint``), audited: the first is the original
(copy 0, ``print_receipt``), printed once; every later one is a reprint (``reprint_receipt``),
numbered 1, 2, … and marked 重打 on each copy. The document's row is locked while a print is
recorded, so two clerks pressing "print the original" at once get one original: the second is
refused (409, ``original_printed``) and told to reprint; it does not silently become a reprint,
whose number would then count a copy nobody asked for. A reprint before the original is
refused too (``original_not_printed``). The copies of a recorded print are served unmarked only
to whoever recorded it, for ``PRINT_WINDOW`` after (long enough for the print dialog and a
jammed printer, short enough that the link is not a way round the reprint); any other view is
marked view-only (仅供查看) on every copy (``printed_for``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from collection.models import Deposit, DepositPrint, DocumentPrint, Payment, Receipt, ReceiptPrint
from collection.services.errors import PaymentConflict
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


PRINT_WINDOW = timedelta(minutes=10)


def _record_print(
    actor: Principal,
    document: Receipt | Deposit,
    *,
    original: bool,
    action: AuditAction,
    number: str,
) -> DocumentPrint:
    """Record the original (``original``) or the next reprint of a receipt or deposit receipt,
    under the document row's lock (see the module's overview)."""
    tenant = actor.tenant
    assert tenant is not None
    print_model: type[DocumentPrint] = (
        ReceiptPrint if isinstance(document, Receipt) else DepositPrint
    )
    parent = "receipt" if isinstance(document, Receipt) else "deposit"
    with transaction.atomic():
        type(document).objects.select_for_update().filter(pk=document.pk).get()
        last = print_model.objects.filter(**{parent: document}).aggregate(last=Max("copy"))["last"]
        if original and last is not None:
            raise PaymentConflict(
                _("The original of receipt %(number)s was printed already: print a reprint (重打).")
                % {"number": number},
                code="original_printed",
            )
        if not original and last is None:
            raise PaymentConflict(
                _("The original of receipt %(number)s has not been printed: print it first.")
                % {"number": number},
                code="original_not_printed",
            )
        printed = print_model.objects.create(
            tenant=tenant,
            copy=0 if last is None else last + 1,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label[:200],
            **{parent: document},
        )
        record_audit(
            actor,
            action,
            document,
            after={"number": number, "print": printed.copy, "original": printed.is_original},
        )
    return printed


def print_receipt(actor: Principal, receipt: Receipt) -> ReceiptPrint:
    """Record the receipt's original print (once; audited)."""
    printed = _record_print(
        actor, receipt, original=True, action=AuditAction.RECEIPT_PRINTED,
        number=receipt.display_number,
    )  # fmt: skip
    assert isinstance(printed, ReceiptPrint)
    return printed


def reprint_receipt(actor: Principal, receipt: Receipt) -> ReceiptPrint:
    """Record a reprint (重打) of the receipt: the copies are marked with its number."""
    printed = _record_print(
        actor, receipt, original=False, action=AuditAction.RECEIPT_REPRINTED,
        number=receipt.display_number,
    )  # fmt: skip
    assert isinstance(printed, ReceiptPrint)
    return printed


def print_deposit_receipt(actor: Principal, deposit: Deposit) -> DepositPrint:
    """Record the deposit receipt's original print (once; audited)."""
    printed = _record_print(
        actor, deposit, original=True, action=AuditAction.DEPOSIT_RECEIPT_PRINTED,
        number=deposit.display_receipt_number,
    )  # fmt: skip
    assert isinstance(printed, DepositPrint)
    return printed


def reprint_deposit_receipt(actor: Principal, deposit: Deposit) -> DepositPrint:
    """Record a reprint (重打) of the deposit receipt."""
    printed = _record_print(
        actor, deposit, original=False, action=AuditAction.DEPOSIT_RECEIPT_REPRINTED,
        number=deposit.display_receipt_number,
    )  # fmt: skip
    assert isinstance(printed, DepositPrint)
    return printed


def printed_for(
    prints: models.QuerySet[DocumentPrint], asked: object, actor: Principal
) -> DocumentPrint | None:
    """The recorded print a request names (``asked``, its id) among the document's ``prints``,
    if its copies may be served unmarked to ``actor``: recorded by them, within
    ``PRINT_WINDOW``. ``None`` otherwise: the copies are marked view-only."""
    text = str(asked or "")
    if not text.isdigit() or len(text) > 18:
        return None
    printed = prints.filter(pk=int(text)).first()
    if printed is None or (printed.actor_kind, printed.actor_id) != (actor.kind, actor.id):
        return None
    if timezone.now() - printed.printed_at > PRINT_WINDOW:
        return None
    return printed
