"""Closing an account (销户): final reading, final bill, settlement, refund; never half done.

``close_account`` runs in two steps, each one transaction:

1. **The final reading.** Recorded through the metering path for a manual reading
   (``metering.services.record_manual_reading``) on the account's meter in service, and checked
   at once by the verification rules (``verification.rules.validate_readings``). The closing row
   is written with its reason (state ``started``). A reading that comes out suspect waits for a
   verifier; the closing is resumed with ``finish_closing`` once it is approved.
2. **The settlement**, all or nothing: under the locks of the account's receivable, wallet and
   deposit rows (so no payment lands half way; a payment reads the account's status under the
   same locks), the final charge is made: a postpaid account gets its final bill
   (``billing.bills.final``: the partial period, prorated by days), a prepaid account its last
   prepaid charge up to the final reading (``billing.prepaid.charge_account``). Then:

   - credit on the receivable (a credited bill that had been paid) moves to the wallet;
   - the wallet's credit (credit on account, or the prepaid balance) pays what the bills owe;
   - the deposit pays what the bills still owe, then what the wallet is owed (a prepaid balance
     below zero);
   - one journal entry ``("account_closing", id)`` records these moves;
   - what is left of the credit and the deposit becomes one refund request (approved by a second
     person, then paid, as any refund), paid as the closing asked (cash, bank transfer,
     provider); what the customer still owes stays as arrears on the closed account;
   - the account is CLOSED on the final reading's day (it takes no payments from then on), the
     figures are kept on the closing row and audited.

``preview_closing`` runs both steps and rolls them back: the page shows exactly what confirming
would do (the final bill, the credit and deposit applied, the refund, the arrears).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.bills.final import final_meter, issue_final_bill, price_final_bill
from billing.prepaid import charge_account
from billing.tariffs.spec import PricingError
from collection.models import AccountClosing, ClosingState, Refund, RefundChannel, RefundState
from collection.services.errors import PaymentConflict, field_error
from collection.services.refunds import (
    check_payout,
    customer_ledger_ids,
    lock_account_ledgers,
    request_refund,
)
from customers.identifiers import mask_bank_account
from customers.models import Account, AccountStatus, PaymentMode
from customers.services import update_account
from ledger.models import LedgerKind
from ledger.services import EntrySpec, post_entries, records_text
from metering.models import Meter, Reading
from metering.services import record_manual_reading
from tenancy.audit import AuditAction, record_audit
from tenancy.fields import decrypt, encrypt
from tenancy.models import ActorKind, Tenant
from tenancy.money import ZERO
from tenancy.principal import Principal
from tenancy.wording import join_list
from verification.effective import effective_readings, modulus
from verification.models import ReadingCheck, Rule
from verification.rules import WRAP_SHARE, validate_readings


@dataclass(frozen=True)
class Settlement:
    """The closing's figures (yuan)."""

    final_charge: Decimal  # the final bill, or the last prepaid charge
    bills_owed: Decimal  # what the bills owed after the final charge
    wallet_owed: Decimal  # a prepaid balance below zero
    credit: Decimal  # the wallet's credit (with receivable credit moved to it)
    deposit: Decimal  # the deposit held
    credit_applied: Decimal
    deposit_applied: Decimal
    refund_credit: Decimal
    refund_deposit: Decimal
    arrears: Decimal

    @property
    def refund(self) -> Decimal:
        return self.refund_credit + self.refund_deposit

    def as_json(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()} | {
            "refund": str(self.refund)
        }


def settle(balances: dict[str, Decimal], final_charge: Decimal) -> Settlement:
    """The settlement of the balances after the final charge (a pure function)."""
    receivable = balances[LedgerKind.RECEIVABLE]
    wallet = balances[LedgerKind.WALLET]
    bills_owed = max(receivable, ZERO)
    wallet_owed = max(wallet, ZERO)
    credit = max(-receivable, ZERO) + max(-wallet, ZERO)
    deposit = max(-balances[LedgerKind.DEPOSIT], ZERO)
    credit_applied = min(credit, bills_owed)
    deposit_to_bills = min(deposit, bills_owed - credit_applied)
    deposit_to_wallet = min(deposit - deposit_to_bills, wallet_owed)
    deposit_applied = deposit_to_bills + deposit_to_wallet
    return Settlement(
        final_charge=final_charge,
        bills_owed=bills_owed,
        wallet_owed=wallet_owed,
        credit=credit,
        deposit=deposit,
        credit_applied=credit_applied,
        deposit_applied=deposit_applied,
        refund_credit=credit - credit_applied,
        refund_deposit=deposit - deposit_applied,
        arrears=bills_owed - credit_applied - deposit_to_bills + wallet_owed - deposit_to_wallet,
    )


def _settlement_lines(
    ids: dict[str, int], balances: dict[str, Decimal], figures: Settlement
) -> list[tuple[int, Decimal]]:
    """Dr/Cr of the settlement entry, netted per ledger account (zeros dropped)."""
    receivable, wallet, deposit = (
        ids[LedgerKind.RECEIVABLE], ids[LedgerKind.WALLET], ids[LedgerKind.DEPOSIT],
    )  # fmt: skip
    moves: dict[int, Decimal] = {receivable: ZERO, wallet: ZERO, deposit: ZERO}
    receivable_credit = max(-balances[LedgerKind.RECEIVABLE], ZERO)
    moves[receivable] += receivable_credit  # receivable credit to the wallet
    moves[wallet] -= receivable_credit
    moves[wallet] += figures.credit_applied  # credit pays the bills
    moves[receivable] -= figures.credit_applied
    deposit_to_wallet = min(figures.deposit_applied, figures.wallet_owed)
    deposit_to_bills = figures.deposit_applied - deposit_to_wallet
    moves[deposit] += figures.deposit_applied  # the deposit pays bills, then the wallet
    moves[receivable] -= deposit_to_bills
    moves[wallet] -= deposit_to_wallet
    return [(ledger_id, amount) for ledger_id, amount in sorted(moves.items()) if amount]


@dataclass(frozen=True)
class Payout:
    channel: str = RefundChannel.CASH
    payee_bank_account: str = ""
    payee_bank: str = ""
    provider: str = ""

    def stored(self) -> dict[str, str]:
        """As the closing keeps it: the customer's bank account encrypted (personal data)."""
        account = self.payee_bank_account.strip()
        return {**asdict(self), "payee_bank_account": encrypt(account) if account else ""}

    @classmethod
    def of(cls, closing: AccountClosing) -> Payout:
        """The payout a closing keeps, its bank account decrypted."""
        kept = dict(closing.payout)
        if kept.get("payee_bank_account"):
            kept["payee_bank_account"] = decrypt(kept["payee_bank_account"])
        return cls(**kept)

    def masked(self) -> dict[str, str]:
        """As shown to staff and in the API: the bank account masked."""
        account = self.payee_bank_account
        return {**asdict(self), "payee_bank_account": mask_bank_account(account) if account else ""}


def close_account(
    actor: Principal,
    account: Account,
    *,
    reason: str,
    taken_at: datetime,
    values: dict[str, Any],
    payout: Payout | None = None,
) -> AccountClosing:
    """Close the account (see the module's overview): the final reading, then the settlement
    when the reading is valid. Returns the closing, ``closed`` or ``started`` (waiting, with the
    reason)."""
    assert actor.tenant is not None
    ensure_customer_ledgers(actor.tenant, account)
    closing = start_closing(actor, account, reason=reason, taken_at=taken_at, values=values,
                            payout=payout)  # fmt: skip
    try:
        return finish_closing(actor, closing)
    except (ValidationError, PricingError) as exc:
        why = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        AccountClosing.objects.filter(pk=closing.pk).update(hold_reason=why[:500])
        closing.refresh_from_db()
        return closing


def _check_actor(actor: Principal) -> None:
    if actor.kind != ActorKind.STAFF:
        raise PermissionDenied(_("An account is closed by staff."))


def start_closing(
    actor: Principal,
    account: Account,
    *,
    reason: str,
    taken_at: datetime,
    values: dict[str, Any],
    payout: Payout | None = None,
) -> AccountClosing:
    """Step 1: record the final reading and the closing (state ``started``)."""
    _check_actor(actor)
    tenant = actor.tenant
    assert tenant is not None
    reason = reason.strip()
    if not reason:
        raise field_error("reason", _("A reason is required."), "required")
    payout = payout or Payout()
    payout = replace(
        payout,
        payee_bank_account=check_payout(payout.channel, payout.payee_bank_account, payout.provider),
    )
    with transaction.atomic():
        account = Account.objects.select_for_update(no_key=True).get(pk=account.pk)
        if account.status == AccountStatus.CLOSED:
            raise PaymentConflict(_("The account is closed already."), code="closed_account")
        if (
            AccountClosing.objects.filter(account=account)
            .exclude(state=ClosingState.CANCELLED)
            .exists()
        ):
            raise PaymentConflict(
                _("The account's closing is under way: resume it."), code="closing_started"
            )
        _refuse_pending_refunds(account)
        meter = final_meter(account)
        _refuse_backwards(meter, taken_at, values)
        try:
            with transaction.atomic():
                reading = record_manual_reading(actor, meter, taken_at, values)
        except IntegrityError as exc:
            raise PaymentConflict(
                _("Another reading with other values is recorded for this meter at that time."),
                code="reading_conflict",
            ) from exc
        validate_readings(tenant, [meter.pk])
        closing = AccountClosing.objects.create(
            tenant=tenant,
            site_id=account.site_id,
            account=account,
            reason=reason[:300],
            state=ClosingState.STARTED,
            final_reading=reading,
            final_taken_at=reading.taken_at,
            payout=payout.stored(),
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label[:200],
        )
        record_audit(
            actor,
            AuditAction.ACCOUNT_CLOSING_STARTED,
            closing,
            after={"account": account.number, "reason": reason,
                   "final_reading": {"taken_at": reading.taken_at, "total": reading.total}},
        )  # fmt: skip
    return closing


def finish_closing(actor: Principal, closing: AccountClosing) -> AccountClosing:
    """Step 2, all or nothing: the final charge, the settlement, the refund, the account closed."""
    _check_actor(actor)
    tenant = actor.tenant
    assert tenant is not None
    ensure_customer_ledgers(tenant, closing.account)
    with transaction.atomic():
        closing = AccountClosing.objects.select_for_update().get(pk=closing.pk)
        if closing.state != ClosingState.STARTED:
            raise PaymentConflict(_("The account is closed already."), code="closed_account")
        # The account row first, then its ledger rows: the order prepaid charging locks them
        # in. FOR NO KEY UPDATE: a payment that holds the ledger rows inserts its own rows
        # naming the account (a key-share lock), and must not wait for this one.
        locked = Account.objects.select_for_update(no_key=True).filter(pk=closing.account_id)
        locked.values_list("pk").get()
        account = Account.objects.select_related("site", "tenant").get(pk=closing.account_id)
        lock_account_ledgers(tenant, account)
        _refuse_pending_refunds(account)
        reading = closing.final_reading
        found = effective_readings([reading.meter_id], reading.taken_at, reading.taken_at)
        final = next(
            (e for e in found[reading.meter_id].effective if e.reading_id == reading.pk), None
        )
        if final is None:
            raise ValidationError(
                {"final_reading": _("The final reading awaits verification (%(why)s); the "
                                     "closing is resumed once a verifier has approved it.")
                 % {"why": _suspect_because(reading)}},
                code="awaiting_verification",
            )  # fmt: skip
        bill = charge = None
        if account.payment_mode == PaymentMode.PREPAID:
            charge = charge_account(actor, account.pk, until=final)
            final_charge = charge.amount if charge else ZERO
        else:
            bill = issue_final_bill(actor, price_final_bill(account, final))
            final_charge = bill.total
        balances = lock_account_ledgers(tenant, account)
        figures = settle(balances, final_charge)
        ids = customer_ledger_ids(tenant, account)
        closed_on = timezone.localdate(reading.taken_at, timezone=tenant.zone)
        lines = _settlement_lines(ids, balances, figures)
        entry_id = None
        if lines:
            entry = EntrySpec(
                "account_closing",
                str(closing.pk),
                lines,
                closed_on,
                memo=records_text(
                    gettext_noop("Closing of account %(account)s: deposit and credit applied"),
                    account=account.number,
                ),
                site_id=account.site_id,
                references=[f"closing:{closing.pk}"] * len(lines),
            )
            entry_id = post_entries(actor, [entry])[entry.source_id]
        refund = None
        if figures.refund:
            payout = Payout.of(closing)
            refund = request_refund(
                actor,
                account=account,
                from_wallet=figures.refund_credit,
                from_deposit=figures.refund_deposit,
                channel=payout.channel,
                payee_bank_account=payout.payee_bank_account,
                payee_bank=payout.payee_bank,
                provider=payout.provider,
                reason=_("Account closed: %(reason)s") % {"reason": closing.reason},
                closing=True,
            )
        update_account(actor, account, {"status": AccountStatus.CLOSED, "closed_on": closed_on})
        closing.state = ClosingState.CLOSED
        closing.hold_reason = ""
        closing.bill = bill
        closing.prepaid_charge = charge
        closing.settlement_entry_id = entry_id
        closing.refund = refund
        closing.figures = figures.as_json()
        closing.closed_at = timezone.now()
        closing.save()
        record_audit(
            actor,
            AuditAction.ACCOUNT_CLOSED,
            closing,
            before={"status": AccountStatus.ACTIVE},
            after={"account": account.number, "closed_on": closed_on,
                   "bill": bill.number if bill else None, **closing.figures},
        )  # fmt: skip
    return closing


def cancel_closing(actor: Principal, closing: AccountClosing, *, reason: str) -> AccountClosing:
    """Cancel a closing that is started and not settled (its final reading waits for a verifier,
    or something else holds it): nothing was posted, the account stays active and may be closed
    again later with a new final reading.

    The final reading is not deleted or edited (a reading is a measurement, kept as read): it
    stays the meter's reading of that time and goes the way of any reading. A suspect one stays
    in the verification queue, where a verifier approves it, edits it or replaces it by an
    estimate (four eyes), exactly as a suspect reading that no closing took; until then it holds
    the account's charging and billing back, as any suspect reading does. The closing keeps who
    cancelled it, when and why, and the cancellation is audited."""
    _check_actor(actor)
    reason = reason.strip()
    if not reason:
        raise field_error("reason", _("A reason is required."), "required")
    with transaction.atomic():
        # The closing's row first, as ``finish_closing`` locks it: the two never cross.
        closing = AccountClosing.objects.select_for_update().get(pk=closing.pk)
        if closing.state != ClosingState.STARTED:
            raise PaymentConflict(
                _("Only a closing that waits can be cancelled; this one is %(state)s.")
                % {"state": ClosingState(closing.state).label},
                code="not_started",
            )
        closing.state = ClosingState.CANCELLED
        closing.cancelled_at = timezone.now()
        closing.cancel_reason = reason[:300]
        closing.cancelled_by_label = actor.label[:200]
        closing.save(update_fields=["state", "cancelled_at", "cancel_reason", "cancelled_by_label"])
        record_audit(
            actor,
            AuditAction.ACCOUNT_CLOSING_CANCELLED,
            closing,
            before={"state": ClosingState.STARTED, "hold_reason": closing.hold_reason},
            after={"state": ClosingState.CANCELLED, "account": closing.account.number,
                   "reason": reason, "final_reading": closing.final_reading_id},
        )  # fmt: skip
    return closing


def closing_under_way(account: Account) -> AccountClosing | None:
    """The account's closing that is started and not settled yet (its final reading waits for
    verification), if any: the counter and the account's page say so. The account still takes
    payments meanwhile; the settlement reads the balances under the locks a payment takes."""
    return AccountClosing.objects.filter(account=account, state=ClosingState.STARTED).first()


def ensure_customer_ledgers(tenant: Tenant, account: Account) -> None:
    """Create the account's receivable, wallet and deposit ledger rows in a transaction of their
    own, before the closing locks anything: a row inserted inside the closing, while a payment
    inserts the same one, would leave each waiting for the other (the insert's key check waits
    for the other's transaction, the other waits for the account's lock)."""
    with transaction.atomic():
        customer_ledger_ids(tenant, account)


def _refuse_backwards(meter: Meter, taken_at: datetime, values: dict[str, Any]) -> None:
    """A final reading below the meter's reading before it is refused before anything is
    written: the verification would hold it as a counter gone backwards (``backwards``, judged
    against the reading before it, as here, a wrap excepted), and the closing would wait on a
    reading that is wrong. The person checks the figure, or has the reading before it corrected
    first."""
    total = values.get("total")
    if total is None:
        return
    before = (
        Reading.objects.filter(meter=meter, taken_at__lt=taken_at)
        .order_by("-taken_at")
        .only("taken_at", "total")
        .first()
    )
    if before is None or total >= before.total:
        return
    counter = modulus(meter)
    if total + counter - before.total <= counter * Decimal(WRAP_SHARE):
        return  # the counter rolled over
    zone = meter.tenant.zone
    raise field_error(
        "total",
        _("The final reading %(total)s is below the meter's reading of %(time)s, %(before)s: a "
          "counter does not go backwards. Check the figure; if that earlier reading is wrong, "
          "have a verifier correct it first.")
        % {"total": total, "before": before.total,
           "time": f"{before.taken_at.astimezone(zone):%Y-%m-%d %H:%M}"},
        "below_last_reading",
    )  # fmt: skip


def _refuse_pending_refunds(account: Account) -> None:
    """A refund requested and not decided yet is decided before the account is settled: the
    settlement counts every yuan the account holds."""
    if Refund.objects.filter(account=account, state=RefundState.REQUESTED).exists():
        raise field_error(
            "account",
            _("A refund of this account awaits approval: approve or reject it first."),
            "refund_pending",
        )


class _Preview(Exception):
    def __init__(self, closing: AccountClosing, bill: dict[str, Any] | None) -> None:
        super().__init__("preview")
        self.closing = closing
        self.bill = bill


@dataclass(frozen=True)
class ClosingPreview:
    state: str
    hold_reason: str
    figures: dict[str, str]
    bill: dict[str, Any] | None


def preview_closing(
    actor: Principal,
    account: Account,
    *,
    taken_at: datetime,
    values: dict[str, Any],
) -> ClosingPreview:
    """What closing with this final reading would do, computed by doing it and rolling back;
    the preview itself is audited."""
    try:
        with transaction.atomic():
            closing = close_account(
                actor, account, reason=_("preview"), taken_at=taken_at, values=values
            )
            bill = None
            if closing.bill is not None:
                bill = {
                    "number": closing.bill.number,
                    "period": closing.bill.period,
                    "starts_on": closing.bill.starts_on,
                    "ends_on": closing.bill.ends_on,
                    "total": closing.bill.total,
                    "lines": [
                        {"label": line.label, "quantity": line.quantity, "unit": line.unit,
                         "unit_price": line.unit_price, "amount": line.amount}
                        for line in closing.bill.lines.order_by("position")
                    ],
                }  # fmt: skip
            raise _Preview(closing, bill)
    except _Preview as preview:
        result = ClosingPreview(
            preview.closing.state, preview.closing.hold_reason, preview.closing.figures,
            preview.bill,
        )  # fmt: skip
    # Kept (outside the rollback): who looked at a customer's final figures, and which.
    record_audit(
        actor,
        AuditAction.ACCOUNT_CLOSING_PREVIEWED,
        account,
        after={"taken_at": taken_at, "total": values.get("total"), **result.figures},
    )
    return result


def _suspect_because(reading: Reading) -> str:
    """The verification rules the final reading broke, in words (what the verifier will see)."""
    rules = (
        ReadingCheck.objects.filter(reading=reading).values_list("rules", flat=True).first() or ""
    )
    named = [str(Rule(code).label) for code in rules.split(",") if code in Rule.values]
    return join_list(named) or _("not checked yet")
