"""Cashier shifts (日结): open with a float, every counter payment in the open shift, close with
the cash counted against what the ledger expects, a supervisor's approval of a difference, and
the cash handed to the bank.

**Expected cash comes from the ledger.** The float (备用金) is not posted: it is the cashier's
change, counted in and out. Everything else is: a cash payment debits the cashier's cash on
hand (``LedgerKind.CASH``, holder ``user:<id>``), its reversal credits it, and so will the cash
deposits and cash refunds other parts of the collect stage post to the same account. The
cashier's *drawer mark* is the sum of that account's lines, less the two kinds of entry this
module posts that are not drawer movements: an approved shift difference (the books following
the count) and a hand-over to the bank (cash that left with the bank slip, after a close). A
shift's movements are its drawer mark at close less its mark at the start, so a movement of a
new kind counts without a change here. Expected cash = float + movements.

**Where a shift starts.** A shift starts at the mark its cashier's previous shift closed at
(the first shift at the mark when it opened). So a movement made between two shifts (a
supervisor reversing a cash payment of a closed shift, a refund paid out) counts in the
cashier's NEXT shift: the cash for it leaves the next drawer. A closed shift is never reopened.

**Why the figures hold under concurrency.** A counter payment locks its cashier's open shift
row and checks it is open; closing locks the same row, then the cashier's cash ledger row (as
every posting to it does), before the mark is read. A payment is therefore either committed
before the close reads the mark (and in it) or refused after: never in a closed shift. A
movement that does not lock the shift (a reversal) queues on the cash ledger row: it is in the
close's mark or in the next shift's. Lock order: customer ledgers → shift → cash ledger.

**Bank cards.** The card terminal's settlement total is counted against the shift's card
payments less their reversals made up to the close (later ones count in the next shift), plus
the deposits taken by card in the shift (each names its shift, locked as a payment locks it). A
card
difference is recorded and approved with the cash one; the clearing account is reconciled with
the acquirer's settlement by finance, so only the cash difference is posted.

**The count** is the cashier's (in their absence a supervisor of the site counts the drawer
and closes the shift). A difference (counted − expected) of zero on both channels closes the
shift at once; any other waits for a supervisor (a site manager of the shift's site or a tenant
administrator; never the cashier, never who counted), who approves it with a note, posting
the cash difference once (source ``("shift_difference", shift id)``): a shortage Dr cash over
and short, Cr cash on hand; an overage the reverse. Or rejects the count: the cashier counts
again (the expected figures stay as they were at close).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.runs.services import FourEyesError, refuse_integration, same_actor
from collection.models import (
    COUNTER_CHANNELS,
    CashHandover,
    Channel,
    Deposit,
    Payment,
    PaymentReversal,
    Refund,
    RefundChannel,
    RefundState,
    Shift,
    ShiftState,
)
from collection.services.errors import PaymentConflict, field_error
from ledger.models import JournalLine, LedgerAccount, LedgerKind
from ledger.services import (
    EntrySpec,
    lock_ledger_accounts,
    post_entries,
    records_text,
    tenant_ledger_account,
)
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import allocate_ids
from tenancy.models import ActorKind, Site, Tenant, User
from tenancy.money import Money, round_fen
from tenancy.principal import Principal
from tenancy.roles import Role

SUPERVISORS = (Role.SITE_MANAGER, Role.TENANT_ADMIN)
MAX_CASH = Decimal("99999999.99")

# Entries on a cash-on-hand account that are not drawer movements (see the overview).
DIFFERENCE_SOURCE = "shift_difference"
HANDOVER_SOURCE = "cash_handover"
NOT_DRAWER = (DIFFERENCE_SOURCE, HANDOVER_SOURCE)


# --- the contract other counter code calls --------------------------------------------------


def open_shift_of(actor: Principal) -> Shift | None:
    """The actor's open shift, or None (an API client or the system has none)."""
    if actor.kind != ActorKind.STAFF or actor.id is None:
        return None
    return Shift.objects.filter(cashier_id=actor.id, state=ShiftState.OPEN).first()


def require_open_shift(actor: Principal, site_id: int) -> Shift:
    """The actor's open shift at ``site_id``, locked until the caller's transaction ends (so it
    cannot close meanwhile); refused (``no_open_shift``, ``shift_site``) otherwise. Call it
    inside the transaction that posts the counter movement, before it posts."""
    shift = None
    if actor.kind == ActorKind.STAFF and actor.id is not None:
        shift = (
            Shift.objects.select_for_update()
            .filter(cashier_id=actor.id, state=ShiftState.OPEN)
            .first()
        )
    if shift is None:
        raise ValidationError(
            _("Open a shift first: every counter payment belongs to the cashier's open shift."),
            code="no_open_shift",
        )
    if shift.site_id != site_id:
        raise ValidationError(
            _("The open shift is at another site: a counter takes its own site's payments."),
            code="shift_site",
        )
    return shift


# --- the ledger figures -----------------------------------------------------------------------


def cash_on_hand_account(tenant: Tenant, cashier_id: int, label: str) -> int:
    """The cashier's cash-on-hand ledger account (created on first use)."""
    name = records_text(gettext_noop("Cash on hand, cashier %(name)s"), name=label)
    holder = f"user:{cashier_id}"
    return tenant_ledger_account(tenant, LedgerKind.CASH, holder=holder, name=name).pk


def _fen(total: Decimal | float | None) -> Decimal:
    """A sum as money: SQLite sums decimals as floats (the demo's database)."""
    return round_fen(Decimal(str(total))) if total is not None else Decimal("0.00")


def drawer_mark(cash_account_id: int) -> Decimal:
    """The cashier's cash movements so far: the cash account's lines less differences and
    hand-overs (see the overview)."""
    total = (
        JournalLine.objects.filter(ledger_account_id=cash_account_id)
        .exclude(entry__source_type__in=NOT_DRAWER)
        .aggregate(total=Sum("amount"))["total"]
    )
    return _fen(total)


@dataclass(frozen=True)
class ChannelFigures:
    payments: int
    taken: Decimal
    reversals: int
    reversed: Decimal

    @property
    def net(self) -> Decimal:
        return self.taken - self.reversed


@dataclass(frozen=True)
class ShiftFigures:
    """What a shift expects (live while it is open, as fixed at close after)."""

    float_amount: Decimal
    cash: ChannelFigures
    cash_movements: Decimal  # from the ledger: payments, reversals and any other movement
    expected_cash: Decimal
    card: ChannelFigures
    expected_card: Decimal
    card_deposits: int = 0
    card_deposited: Decimal = Decimal("0.00")
    # reversals of the cashier's card payments of earlier shifts, made since the last close:
    # refunded on the terminal, they lower this shift's settlement
    card_earlier_reversed: Decimal = Decimal("0.00")

    @property
    def other_cash(self) -> Decimal:
        """Movements other than this shift's payments and their reversals (a reversal of an
        earlier shift's payment, a deposit or refund paid in cash)."""
        return self.cash_movements - self.cash.net


def _channel_figures(shift: Shift, channel: str, until: datetime | None) -> ChannelFigures:
    taken = Payment.objects.filter(shift=shift, channel=channel).aggregate(
        count=Count("pk"), total=Sum("amount")
    )
    reversals = PaymentReversal.objects.filter(payment__shift=shift, payment__channel=channel)
    if until is not None:
        reversals = reversals.filter(reversed_at__lte=until)
    undone = reversals.aggregate(count=Count("pk"), total=Sum("payment__amount"))
    return ChannelFigures(
        taken["count"],
        _fen(taken["total"]),
        undone["count"],
        _fen(undone["total"]),
    )


def _card_deposits(shift: Shift) -> tuple[int, Decimal]:
    """The deposits taken by card in the shift: their count and total."""
    found = Deposit.objects.filter(shift=shift, channel=Channel.COUNTER_CARD).aggregate(
        count=Count("pk"), total=Sum("amount")
    )
    return found["count"], _fen(found["total"])


def _earlier_reversals(shift: Shift, until: datetime | None) -> QuerySet[PaymentReversal]:
    """Reversals of the cashier's counter payments of earlier shifts made since the last close
    (up to ``until``): they count in this shift (see the overview)."""
    previous = _previous_shift(shift)
    if previous is None or previous.closed_at is None:
        return PaymentReversal.objects.none()
    reversals = PaymentReversal.objects.filter(
        payment__channel__in=(Channel.COUNTER_CASH, Channel.COUNTER_CARD),
        payment__shift__cashier_id=shift.cashier_id,
        reversed_at__gt=previous.closed_at,
    ).exclude(payment__shift=shift)
    if until is not None:
        reversals = reversals.filter(reversed_at__lte=until)
    return reversals


def _earlier_card_reversals(shift: Shift, until: datetime | None) -> Decimal:
    reversals = _earlier_reversals(shift, until).filter(payment__channel=Channel.COUNTER_CARD)
    return _fen(reversals.aggregate(total=Sum("payment__amount"))["total"])


def _previous_shift(shift: Shift) -> Shift | None:
    return (
        Shift.objects.filter(cashier_id=shift.cashier_id, pk__lt=shift.pk)
        .exclude(closed_at=None)
        .order_by("-pk")
        .first()
    )


@dataclass(frozen=True)
class Movement:
    """A movement of the shift other than its own payments, as the shift page lists it."""

    kind: str  # "deposit", "refund", "earlier_reversal"
    at: datetime
    account_number: str
    channel: str  # the channel's label
    amount: Decimal  # into the drawer or the card settlement (+) or out of it (−)
    reference: str


def other_movements(shift: Shift) -> list[Movement]:
    """What the expected figures count besides the shift's payments and their reversals:
    deposits taken in the shift, refunds the cashier paid in cash and reversals of the
    cashier's payments of earlier shifts, from the shift's opening to its close (or now)."""
    until = shift.closed_at or timezone.now()
    found: list[Movement] = [
        Movement("deposit", deposit.taken_at, deposit.account.number,
                 deposit.get_channel_display(), deposit.amount, deposit.display_receipt_number)
        for deposit in Deposit.objects.filter(shift=shift).select_related("account")
    ]  # fmt: skip
    refunds = Refund.objects.filter(
        channel=RefundChannel.CASH, state=RefundState.PAID, paid_by_kind=ActorKind.STAFF,
        paid_by_id=shift.cashier_id, paid_at__gte=shift.opened_at, paid_at__lte=until,
    ).select_related("account")  # fmt: skip
    found += [
        Movement("refund", refund.paid_at or until, refund.account.number,
                 refund.get_channel_display(), -refund.amount, str(refund.pk))
        for refund in refunds
    ]  # fmt: skip
    found += [
        Movement("earlier_reversal", reversal.reversed_at, reversal.payment.account.number,
                 reversal.payment.get_channel_display(), -reversal.payment.amount,
                 str(reversal.payment_id))
        for reversal in _earlier_reversals(shift, until).select_related("payment__account")
    ]  # fmt: skip
    return sorted(found, key=lambda movement: movement.at)


def shift_figures(shift: Shift) -> ShiftFigures:
    """The shift's expected figures: as fixed at close, or live while it is open."""
    cash = _channel_figures(shift, Channel.COUNTER_CASH, shift.closed_at)
    card = _channel_figures(shift, Channel.COUNTER_CARD, shift.closed_at)
    card_deposits, card_deposited = _card_deposits(shift)
    earlier = _earlier_card_reversals(shift, shift.closed_at)
    if shift.drawer_end is not None and shift.expected_card is not None:
        movements = shift.drawer_end - shift.drawer_start
        expected_card = shift.expected_card
    else:
        tenant = shift.tenant
        cash_id = cash_on_hand_account(tenant, shift.cashier_id, shift.cashier_label)
        movements = drawer_mark(cash_id) - shift.drawer_start
        expected_card = card.net + card_deposited - earlier
    return ShiftFigures(
        float_amount=shift.float_amount,
        cash=cash,
        cash_movements=movements,
        expected_cash=shift.float_amount + movements,
        card=card,
        expected_card=expected_card,
        card_deposits=card_deposits,
        card_deposited=card_deposited,
        card_earlier_reversed=earlier,
    )


# --- open, close, approve, reject -----------------------------------------------------------


def _money(field: str, value: Decimal, *, positive: bool = False) -> Decimal:
    try:
        amount = Money(value)
    except (TypeError, ValueError) as exc:
        raise field_error(field, str(exc)) from exc
    low = Decimal("0.01") if positive else Decimal("0.00")
    if not low <= amount <= MAX_CASH:
        raise field_error(
            field,
            _("An amount is from %(low)s to %(high)s yuan.") % {"low": low, "high": MAX_CASH},
            "out_of_range",
        )
    return amount


def open_shift(
    actor: Principal, *, site: Site, float_amount: Decimal, now: datetime | None = None
) -> Shift:
    """Open the actor's shift at ``site`` with a float. One open shift per cashier: a second
    (or a concurrent twin) is refused (``shift_open``)."""
    if actor.kind != ActorKind.STAFF or actor.id is None:
        raise PermissionDenied(_("A shift is a cashier's: staff open their own."))
    if not actor.site_scope((Role.CASHIER,)).allows(site.pk):
        raise PermissionDenied(_("You take no payments at this site."))
    float_amount = _money("float_amount", float_amount)
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    cash_id = cash_on_hand_account(tenant, actor.id, actor.label)
    try:
        with transaction.atomic():
            lock_ledger_accounts(tenant, [cash_id])
            if open_shift_of(actor) is not None:
                raise _already_open()
            previous = (
                Shift.objects.filter(cashier_id=actor.id)
                .exclude(drawer_end=None)
                .order_by("-pk")
                .first()
            )
            start = previous.drawer_end if previous else drawer_mark(cash_id)
            assert start is not None
            shift = Shift.objects.create(
                tenant=tenant,
                site=site,
                cashier_id=actor.id,
                cashier_label=actor.label[:200],
                float_amount=float_amount,
                opened_at=now,
                drawer_start=start,
            )
            record_audit(
                actor, AuditAction.SHIFT_OPENED, shift,
                after={"site": site.code, "float": float_amount, "drawer_start": start},
            )  # fmt: skip
    except IntegrityError as exc:  # a concurrent open of the same cashier won
        raise _already_open() from exc
    return shift


def _already_open() -> PaymentConflict:
    return PaymentConflict(_("You have an open shift already: close it first."), "shift_open")


def close_shift(
    actor: Principal,
    shift: Shift,
    *,
    counted_cash: Decimal,
    counted_card: Decimal,
    note: str = "",
    now: datetime | None = None,
) -> Shift:
    """Close the shift with the cash counted and the card terminal's settlement total (or count
    again after a rejected count). The expected figures are fixed at the first close; no
    payment joins the shift after it."""
    counted_cash = _money("counted_cash", counted_cash)
    counted_card = _money("counted_card", counted_card)
    tenant = actor.tenant
    assert tenant is not None
    with transaction.atomic():
        shift = Shift.objects.select_for_update().get(pk=shift.pk)
        # the time is taken once the lock is held: a payment that held the shift before it
        # was received earlier than the close
        now = now or timezone.now()
        if not same_actor(actor, ActorKind.STAFF, shift.cashier_id):
            refuse_integration(actor)
            if not actor.site_scope(SUPERVISORS).allows(shift.site_id):
                raise PermissionDenied(
                    _("A shift is closed by its cashier, or in their absence by a supervisor.")
                )
        if shift.state not in (ShiftState.OPEN, ShiftState.RECOUNT):
            raise PaymentConflict(_("The shift is counted already."), "shift_closed")
        if shift.state == ShiftState.OPEN:
            cash_id = cash_on_hand_account(tenant, shift.cashier_id, shift.cashier_label)
            lock_ledger_accounts(tenant, [cash_id])
            figures = shift_figures(shift)
            shift.closed_at = now
            shift.drawer_end = shift.drawer_start + figures.cash_movements
            shift.expected_cash = figures.expected_cash
            shift.expected_card = figures.expected_card
            shift.cash_payments = figures.cash.payments
            shift.card_payments = figures.card.payments
        assert shift.expected_cash is not None and shift.expected_card is not None
        shift.counted_cash = counted_cash
        shift.counted_card = counted_card
        shift.difference_cash = counted_cash - shift.expected_cash
        shift.difference_card = counted_card - shift.expected_card
        shift.counted_at = now
        shift.count_note = note.strip()[:300]
        shift.counted_by_kind = actor.kind
        shift.counted_by_id = actor.id
        shift.counted_by_label = actor.label[:200]
        balanced = shift.difference_cash == 0 and shift.difference_card == 0
        shift.state = ShiftState.CLOSED if balanced else ShiftState.PENDING
        shift.save()
        record_audit(
            actor, AuditAction.SHIFT_COUNTED, shift,
            after={"expected_cash": shift.expected_cash, "counted_cash": counted_cash,
                   "expected_card": shift.expected_card, "counted_card": counted_card,
                   "difference_cash": shift.difference_cash,
                   "difference_card": shift.difference_card, "state": shift.state,
                   "note": shift.count_note},
        )  # fmt: skip
    return shift


def check_may_decide(actor: Principal, shift: Shift) -> None:
    """A supervisor of the shift's site decides on its difference; never its cashier, never an
    integration."""
    if same_actor(actor, ActorKind.STAFF, shift.cashier_id) or same_actor(
        actor, shift.counted_by_kind, shift.counted_by_id
    ):
        raise FourEyesError(_("Nobody approves a difference of their own shift or count."))
    refuse_integration(actor)
    if not actor.site_scope(SUPERVISORS).allows(shift.site_id):
        raise PermissionDenied(
            _("A shift's difference is decided by a site manager of its site or a tenant "
              "administrator.")
        )  # fmt: skip


def _decided(actor: Principal, shift: Shift, note: str, now: datetime) -> None:
    shift.decision_note = note[:300]
    shift.decided_at = now
    shift.decided_by_kind = actor.kind
    shift.decided_by_id = actor.id
    shift.decided_by_label = actor.label[:200]


def _pending(shift: Shift) -> Shift:
    shift = Shift.objects.select_for_update().get(pk=shift.pk)
    if shift.state != ShiftState.PENDING:
        raise PaymentConflict(_("The shift has no difference awaiting approval."), "not_pending")
    return shift


def approve_difference(
    actor: Principal, shift: Shift, note: str, *, now: datetime | None = None
) -> Shift:
    """Approve the counted difference: the shift closes and the cash difference is posted to
    cash over and short, once."""
    note = note.strip()
    if not note:
        raise field_error("note", _("A note is required."), "required")
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    with transaction.atomic():
        shift = _pending(shift)
        check_may_decide(actor, shift)
        difference = shift.difference_cash or Decimal("0.00")
        if difference:
            cash_id = cash_on_hand_account(tenant, shift.cashier_id, shift.cashier_label)
            over_short = tenant_ledger_account(
                tenant,
                LedgerKind.CASH_OVER_SHORT,
                name=records_text(gettext_noop("Cash over and short")),
            ).pk
            entry = EntrySpec(
                DIFFERENCE_SOURCE,
                str(shift.pk),
                [(cash_id, difference), (over_short, -difference)],
                timezone.localdate(now, timezone=tenant.zone),
                memo=records_text(
                    gettext_noop("Shift difference %(amount)s, cashier %(name)s: %(note)s"),
                    amount=difference,
                    name=shift.cashier_label,
                    note=note,
                ),
                site_id=shift.site_id,
            )
            shift.difference_entry_id = post_entries(actor, [entry])[entry.source_id]
        _decided(actor, shift, note, now)
        shift.state = ShiftState.CLOSED
        shift.save()
        record_audit(
            actor, AuditAction.SHIFT_DIFFERENCE_APPROVED, shift,
            after={"difference_cash": difference, "difference_card": shift.difference_card,
                   "note": note, "entry": shift.difference_entry_id},
        )  # fmt: skip
    return shift


def reject_count(
    actor: Principal, shift: Shift, note: str, *, now: datetime | None = None
) -> Shift:
    """Send the count back: the cashier counts again."""
    note = note.strip()
    if not note:
        raise field_error("note", _("A note is required."), "required")
    now = now or timezone.now()
    with transaction.atomic():
        shift = _pending(shift)
        check_may_decide(actor, shift)
        _decided(actor, shift, note, now)
        shift.state = ShiftState.RECOUNT
        shift.save()
        record_audit(
            actor, AuditAction.SHIFT_COUNT_REJECTED, shift,
            after={"counted_cash": shift.counted_cash, "counted_card": shift.counted_card,
                   "note": note},
        )  # fmt: skip
    return shift


# --- hand-over to the bank ------------------------------------------------------------------


def cash_to_hand_over(tenant: Tenant, cashier_id: int, label: str) -> Decimal:
    """The cashier's cash on hand from closed shifts: the cash account's balance less the open
    shift's movements so far (that cash is still in the drawer). Locks the cash account: call
    it in the transaction that hands the cash over."""
    cash_id = cash_on_hand_account(tenant, cashier_id, label)
    balance = lock_ledger_accounts(tenant, [cash_id])[cash_id]
    return _closed_shifts_cash(cash_id, cashier_id, balance)


def cash_on_hand_figure(tenant: Tenant, cashier_id: int, label: str) -> Decimal:
    """``cash_to_hand_over`` as a page shows it, without a lock."""
    cash_id = cash_on_hand_account(tenant, cashier_id, label)
    balance = LedgerAccount.objects.values_list("balance", flat=True).get(pk=cash_id)
    return _closed_shifts_cash(cash_id, cashier_id, balance)


def _closed_shifts_cash(cash_id: int, cashier_id: int, balance: Decimal) -> Decimal:
    shift = Shift.objects.filter(cashier_id=cashier_id, state=ShiftState.OPEN).first()
    if shift is not None:
        balance -= drawer_mark(cash_id) - shift.drawer_start
    return _fen(balance)


def earliest_handover_day(tenant: Tenant, cashier_id: int, amount: Decimal) -> date | None:
    """The first day a hand-over of ``amount`` can have happened: the day the latest of the
    shifts whose cash it takes was closed. Cash leaves the cashier's hands first in, first out:
    the hand-overs so far took the oldest shifts' cash, this one the next ``amount`` of it.
    A shift's cash is its drawer movements and the difference booked on its count."""
    handed = CashHandover.objects.filter(cashier_id=cashier_id).aggregate(total=Sum("amount"))
    needed = _fen(handed["total"]) + amount
    closed = (
        Shift.objects.filter(cashier_id=cashier_id)
        .exclude(state=ShiftState.OPEN)
        .exclude(drawer_end=None)
        .order_by("closed_at", "pk")
    )
    running, latest = Decimal("0.00"), None
    for shift in closed:
        assert shift.drawer_end is not None and shift.closed_at is not None
        running += shift.drawer_end - shift.drawer_start
        if shift.difference_entry_id is not None and shift.difference_cash is not None:
            running += shift.difference_cash
        latest = timezone.localdate(shift.closed_at, timezone=tenant.zone)
        if running >= needed:
            break
    return latest


def hand_over_cash(
    actor: Principal,
    *,
    cashier: User,
    site: Site,
    amount: Decimal,
    bank: str,
    slip_reference: str,
    handed_on: date,
) -> tuple[CashHandover, bool]:
    """Record cash handed to the bank: Dr the bank's clearing account, Cr the cashier's cash on
    hand; no more than the cash on hand from closed shifts. By the cashier, or a supervisor of
    the site on the cashier's behalf. Once per bank slip: a retry returns the first (False)."""
    amount = _money("amount", amount, positive=True)
    if not same_actor(actor, ActorKind.STAFF, cashier.pk):
        refuse_integration(actor)
        if not actor.site_scope(SUPERVISORS).allows(site.pk):
            raise PermissionDenied(
                _("Cash is handed over by its cashier or a supervisor of the site.")
            )
    tenant = actor.tenant
    assert tenant is not None
    if handed_on > tenant.local_today():
        raise field_error(
            "handed_on", _("Cash is recorded once it was handed over: the day is ahead."), "future"
        )
    same_slip = CashHandover.objects.filter(bank=bank, slip_reference=slip_reference)
    try:
        return _hand_over(actor, tenant, cashier, site, amount, bank, slip_reference, handed_on)
    except IntegrityError:  # another cashier's hand-over took the slip meanwhile
        first = same_slip.first()
        if first is None:
            raise
        _same_handover(first, cashier, amount, handed_on)
        return first, False


def _same_handover(first: CashHandover, cashier: User, amount: Decimal, handed_on: date) -> None:
    if (first.cashier_id, first.amount, first.handed_on) != (cashier.pk, amount, handed_on):
        raise PaymentConflict(
            _("This bank slip was recorded for another hand-over."), "slip_reused"
        )


def _hand_over(
    actor: Principal,
    tenant: Tenant,
    cashier: User,
    site: Site,
    amount: Decimal,
    bank: str,
    slip_reference: str,
    handed_on: date,
) -> tuple[CashHandover, bool]:
    same_slip = CashHandover.objects.filter(bank=bank, slip_reference=slip_reference)
    with transaction.atomic():
        first = same_slip.first()
        if first is None:
            cash_id = cash_on_hand_account(tenant, cashier.pk, cashier.label)
            available = cash_to_hand_over(tenant, cashier.pk, cashier.label)
            first = same_slip.first()  # a concurrent twin committed while we waited
        if first is not None:
            _same_handover(first, cashier, amount, handed_on)
            return first, False
        if amount > available:
            raise field_error(
                "amount",
                _("The cashier has %(available)s yuan of cash on hand to hand over.")
                % {"available": available},
                "exceeds_cash_on_hand",
            )
        earliest = earliest_handover_day(tenant, cashier.pk, amount)
        if earliest is not None and handed_on < earliest:
            raise field_error(
                "handed_on",
                _("This cash came from a shift closed on %(day)s: it cannot have been handed "
                  "to the bank before that day.") % {"day": earliest.isoformat()},
                "before_close",
            )  # fmt: skip
        bank_id = tenant_ledger_account(
            tenant,
            LedgerKind.CLEARING,
            holder=f"bank:{bank}",
            name=records_text(gettext_noop("Clearing, bank %(name)s"), name=bank),
        ).pk
        handover = CashHandover(
            tenant=tenant, site=site, cashier=cashier, cashier_label=cashier.label[:200],
            amount=amount, bank=bank, slip_reference=slip_reference, handed_on=handed_on,
            actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label[:200],
        )  # fmt: skip
        [handover.pk] = allocate_ids(CashHandover, 1)
        entry = EntrySpec(
            HANDOVER_SOURCE,
            str(handover.pk),
            [(bank_id, amount), (cash_id, -amount)],
            handed_on,
            memo=records_text(
                gettext_noop("Cash %(amount)s handed to %(bank)s, slip %(slip)s, cashier %(name)s"),
                amount=amount,
                bank=bank,
                slip=slip_reference,
                name=cashier.label,
            ),
            site_id=site.pk,
        )
        handover.entry_id = post_entries(actor, [entry])[entry.source_id]
        handover.save(force_insert=True)
        record_audit(
            actor, AuditAction.CASH_HANDED_OVER, handover,
            after={"cashier": cashier.label, "amount": amount, "bank": bank,
                   "slip": slip_reference, "handed_on": handed_on},
        )  # fmt: skip
    return handover, True


def counter_shift(actor: Principal, channel: str, site_id: int) -> Shift | None:
    """The open shift a payment of ``channel`` joins (locked), or None for a channel that is
    not the counter's."""
    if channel not in COUNTER_CHANNELS:
        return None
    return require_open_shift(actor, site_id)
