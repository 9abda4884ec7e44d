"""Recharge cards (充值卡): batches, the one-time PIN file, release, redemption, void, expiry.

**Cards.** A tenant administrator generates a batch: a face value, 1 to 10,000 cards, the
last day they may be redeemed, optionally the utility whose accounts they top up, a note.
Each card has a printed serial (12 digits, the last a Luhn check digit, so a mistyped digit
is caught before any lookup) and a secret 16-digit PIN. Only a keyed hash of the PIN is
stored: HMAC-SHA256 under a server-side key (``settings.VOUCHER_PIN_KEY``, or one derived
from the oldest field encryption key) over the tenant, the serial and the PIN. A slow password
hasher is not needed and would not do: a PIN of 16 random digits has 10^16 values, which no
one can try without the key, and redemption allows a handful of guesses per card, so the
hash's speed buys an attacker nothing; PBKDF2 at its usual cost would take minutes for a batch
of 10,000, which must generate in seconds inside one transaction. The PINs are shown once:
the serials and PINs are kept encrypted (the field encryption keys) until the administrator
who generated the batch downloads them as a CSV file for printing; the file is deleted then,
and a second download is refused and audited.

**Ledger.** Printed cards in the utility's safe are not yet owed to anyone: the liability
arises when the batch is released for sale to the shops and agents that sell them. Release
posts Dr "recharge card sales clearing" (what the sellers owe the utility for the cards),
Cr voucher liability, for the unredeemed cards × face value (source ``voucher_release``). A
redemption is a payment of the ``voucher`` channel (``post_redemption``): Dr voucher liability,
Cr the customer's receivable (bills, oldest first, late fees first) and wallet, with its
allocation, receipt and audit, as any payment. Voiding a card or batch that was released
reverses its part of the liability against the clearing account (a lost or stolen card was not
paid for by its seller); before release there is nothing to reverse. Expiry (a daily task)
takes what is left of a released batch past its last day to income, Dr voucher liability,
Cr "expired recharge cards" revenue, once per batch and day (source ``voucher_expiry``).

**Redemption** (``redeem_card``), under the card's row lock, so of two parallel redemptions
of one card exactly one posts: the PIN is checked first; a wrong PIN, or a serial that does
not exist, gets the same answer and is counted (``VoucherPinFailure``, and a payment attempt
for finance); 5 wrong PINs on a serial within an hour lock it for the rest of that hour (an
administrator may unlock it sooner), and 20 wrong PINs by one actor within an hour stop that
actor's redemptions for the rest of it. Only then are a retry (the same idempotency key: the
first payment is answered) and the card's state (redeemed, void, expired, not released)
checked. A reversed redemption makes the card redeemable again (its liability is back).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from collection.models import (
    AttemptOutcome,
    Channel,
    Payment,
    VoucherBatch,
    VoucherBatchState,
    VoucherCard,
    VoucherCardState,
    VoucherPinFailure,
    VoucherPinFile,
)
from collection.services.attempts import AttemptRequest, Failure, record_failed_attempt
from collection.services.channels import payment_source
from collection.services.errors import PaymentConflict, field_error
from collection.services.payments import PaymentRequest, PaymentResult, post_redemption
from customers.identifiers import luhn_check_digit
from customers.models import Account, Utility
from ledger.models import LedgerKind
from ledger.services import EntrySpec, post_entries, records_text, tenant_ledger_account
from tenancy.audit import AuditAction, record_audit
from tenancy.fields import decrypt, encrypt
from tenancy.models import Tenant
from tenancy.money import Money
from tenancy.principal import Principal
from tenancy.sequences import take_block, take_next

MAX_CARDS = 10_000
MIN_FACE_VALUE = Decimal("1.00")
MAX_FACE_VALUE = Decimal("10000.00")
MAX_VALID_YEARS = 5
SERIAL_BASE_DIGITS = 11
PIN_DIGITS = 16
WRONG_PINS_PER_CARD = 5
WRONG_PINS_PER_ACTOR = 20
WRONG_PIN_WINDOW = timedelta(hours=1)
SALES_CLEARING = "voucher_sales"
EXPIRED_COMPONENT = "expired_vouchers"


class VoucherError(ValidationError):
    """A refusal of a recharge card action, with a stable code (the API answers it 400)."""


# --- serials and PINs --------------------------------------------------------------------------


def make_serial(sequence_value: int) -> str:
    base = f"{sequence_value:0{SERIAL_BASE_DIGITS}d}"
    return base + luhn_check_digit(base)


def normalise_digits(value: str) -> str:
    """Digits as printed or typed: spaces and dashes between groups are dropped."""
    return re.sub(r"[\s-]", "", value or "")


def serial_problem(serial: str) -> str | None:
    if not re.fullmatch(rf"\d{{{SERIAL_BASE_DIGITS + 1}}}", serial):
        return _("A card serial has %(digits)d digits.") % {"digits": SERIAL_BASE_DIGITS + 1}
    if luhn_check_digit(serial[:-1]) != serial[-1]:
        return _("This serial is mistyped: its check digit does not match.")
    return None


def grouped(digits: str) -> str:
    """As printed on the card: groups of four."""
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def pin_key() -> bytes:
    if settings.VOUCHER_PIN_KEY:
        return settings.VOUCHER_PIN_KEY.encode()
    seed = base64.urlsafe_b64decode(settings.FIELD_ENCRYPTION_KEYS[-1].encode())
    return hashlib.sha256(b"bars-voucher-pin:" + seed).digest()


def pin_hash(tenant_id: int, serial: str, pin: str, key: bytes | None = None) -> str:
    message = f"{tenant_id}:{serial}:{pin}".encode()
    return hmac.new(key or pin_key(), message, hashlib.sha256).hexdigest()


# --- batches -----------------------------------------------------------------------------------


def latest_expiry(today: date) -> date:
    """The last day a new batch may run to: a card sold today is redeemed within
    ``MAX_VALID_YEARS`` years (a typed 2126 is a typing error, not a century of liability)."""
    try:
        return today.replace(year=today.year + MAX_VALID_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year + MAX_VALID_YEARS, day=28)


def _actor_fields(actor: Principal) -> dict[str, object]:
    return {"actor_kind": actor.kind, "actor_id": actor.id, "actor_label": actor.label[:200]}


def generate_batch(
    actor: Principal,
    *,
    face_value: Decimal,
    count: int,
    expires_on: date,
    utility: str = "",
    note: str = "",
    now: datetime | None = None,
) -> VoucherBatch:
    """Generate a batch of cards in one transaction: the serials, the PINs (hashed on the
    cards, in clear only in the encrypted PIN file) and the audit event."""
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    try:
        face_value = Money(face_value)
    except (TypeError, ValueError) as exc:
        raise field_error("face_value", str(exc)) from exc
    if not MIN_FACE_VALUE <= face_value <= MAX_FACE_VALUE:
        raise field_error(
            "face_value",
            _("A card's face value is from %(min)s to %(max)s yuan.")
            % {"min": MIN_FACE_VALUE, "max": MAX_FACE_VALUE},
            "out_of_range",
        )
    if not 1 <= count <= MAX_CARDS:
        raise field_error(
            "count", _("A batch has 1 to %(max)d cards.") % {"max": MAX_CARDS}, "out_of_range"
        )
    today = timezone.localdate(now, timezone=tenant.zone)
    if expires_on <= today:
        raise field_error("expires_on", _("The last day must be after today."), "in_past")
    if expires_on > latest_expiry(today):
        raise field_error(
            "expires_on",
            _("A card may be valid for at most %(years)d years: the last day is %(day)s or "
              "earlier.") % {"years": MAX_VALID_YEARS, "day": latest_expiry(today).isoformat()},
            "too_far",
        )  # fmt: skip
    if utility and utility not in Utility.values:
        raise field_error("utility", _("Unknown utility."))
    key = pin_key()
    with transaction.atomic():
        number = take_next(tenant, "voucher_batch")
        batch = VoucherBatch.objects.create(
            tenant=tenant, number=number, face_value=face_value, count=count,
            expires_on=expires_on, utility=utility, note=note.strip()[:300], created_at=now,
            **_actor_fields(actor),
        )  # fmt: skip
        serials = [make_serial(value) for value in take_block(tenant, "voucher_serial", count)]
        pins = [f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}" for _serial in serials]
        VoucherCard.objects.bulk_create(
            (
                VoucherCard(
                    tenant=tenant, batch=batch, serial=serial,
                    pin_hash=pin_hash(tenant.pk, serial, pin, key),
                )
                for serial, pin in zip(serials, pins, strict=True)
            ),
            batch_size=2000,
        )  # fmt: skip
        VoucherPinFile.objects.create(
            tenant=tenant, batch=batch, content=encrypt(_pin_csv(batch, serials, pins))
        )
        record_audit(
            actor,
            AuditAction.VOUCHER_BATCH_GENERATED,
            batch,
            after={"number": batch.number, "face_value": face_value, "count": count,
                   "expires_on": expires_on, "utility": utility, "first": serials[0],
                   "last": serials[-1]},
        )  # fmt: skip
    return batch


def _pin_csv(batch: VoucherBatch, serials: list[str], pins: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["batch", "serial", "pin", "face_value", "expires_on"])
    for serial, pin in zip(serials, pins, strict=True):
        writer.writerow(
            [f"{batch.number:06d}", grouped(serial), grouped(pin), str(batch.face_value),
             batch.expires_on.isoformat()]
        )  # fmt: skip
    return out.getvalue()


@dataclass(frozen=True)
class PinFile:
    filename: str
    content: str


def download_pins(actor: Principal, batch: VoucherBatch, *, now: datetime | None = None) -> PinFile:
    """The batch's serials and PINs, once, to the administrator who generated it; the file is
    deleted as it is handed over. A second download (or another person's) is refused, and the
    refusal is audited."""
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    refusal: PermissionDenied | PaymentConflict | None = None
    with transaction.atomic():
        batch = VoucherBatch.objects.select_for_update().get(pk=batch.pk)
        stored = VoucherPinFile.objects.filter(batch=batch).first()
        if (actor.kind, actor.id) != (batch.actor_kind, batch.actor_id):
            refusal = PermissionDenied(
                _("Only the administrator who generated the batch downloads its PINs.")
            )
        elif stored is None and batch.pins_downloaded_at is None:
            refusal = PaymentConflict(
                _("The batch is void: its PINs were destroyed unread."), code="batch_void"
            )
        elif stored is None:
            assert batch.pins_downloaded_at is not None
            when = timezone.localtime(batch.pins_downloaded_at, tenant.zone)
            refusal = PaymentConflict(
                _("The PIN file of this batch was downloaded on %(when)s by %(who)s; the PINs "
                  "are not kept and cannot be shown again. Void the batch if the file is lost.")
                % {"when": f"{when:%Y-%m-%d %H:%M}", "who": batch.pins_downloaded_by},
                code="pins_downloaded",
            )  # fmt: skip
        if refusal is not None:
            record_audit(
                actor,
                AuditAction.VOUCHER_PINS_REFUSED,
                batch,
                after={"number": batch.number, "reason": str(_refusal_text(refusal))},
            )
        else:
            assert stored is not None
            content = decrypt(stored.content)
            stored.delete()
            batch.pins_downloaded_at = now
            batch.pins_downloaded_by = actor.label[:200]
            batch.save(update_fields=["pins_downloaded_at", "pins_downloaded_by"])
            record_audit(
                actor,
                AuditAction.VOUCHER_PINS_DOWNLOADED,
                batch,
                after={"number": batch.number, "count": batch.count},
            )
    if refusal is not None:
        raise refusal
    return PinFile(f"recharge-cards-{batch.number:06d}.csv", content)


def _refusal_text(refusal: Exception) -> str:
    return refusal.messages[0] if isinstance(refusal, ValidationError) else str(refusal)


def _liability(tenant: Tenant, utility: str) -> int:
    return tenant_ledger_account(tenant, LedgerKind.VOUCHER, utility=utility).pk


def _sales_clearing(tenant: Tenant) -> int:
    return tenant_ledger_account(
        tenant,
        LedgerKind.CLEARING,
        holder=SALES_CLEARING,
        name=records_text(gettext_noop("Clearing, recharge cards with the sellers")),
    ).pk


def _unredeemed(batch: VoucherBatch) -> list[VoucherCard]:
    """The batch's unredeemed cards, locked in primary-key order."""
    return list(
        VoucherCard.objects.select_for_update()
        .filter(batch=batch, state=VoucherCardState.UNREDEEMED)
        .order_by("pk")
    )


def release_batch(
    actor: Principal, batch: VoucherBatch, *, now: datetime | None = None
) -> VoucherBatch:
    """Release the batch for sale: its unredeemed cards become a liability (see the overview)."""
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=tenant.zone)
    with transaction.atomic():
        batch = VoucherBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.state != VoucherBatchState.GENERATED:
            raise PaymentConflict(
                _("Only a batch not yet released is released."), code="batch_not_generated"
            )
        if batch.expires_on < today:
            raise VoucherError(_("The batch has expired."), code="batch_expired")
        if batch.pins_downloaded_at is None:
            raise PaymentConflict(
                _("Download the batch's PIN file before releasing it: released cards are a "
                  "liability, and nobody can sell cards whose PINs nobody has."),
                code="pins_not_downloaded",
            )  # fmt: skip
        cards = _unredeemed(batch)
        entry_id = None
        if cards:
            amount = batch.face_value * len(cards)
            entry = EntrySpec(
                "voucher_release",
                str(batch.pk),
                [(_sales_clearing(tenant), amount), (_liability(tenant, batch.utility), -amount)],
                today,
                memo=records_text(
                    gettext_noop("Recharge card batch %(number)s released: %(count)s × %(face)s"),
                    number=f"{batch.number:06d}", count=len(cards), face=batch.face_value,
                ),
            )  # fmt: skip
            entry_id = post_entries(actor, [entry])[entry.source_id]
        batch.state = VoucherBatchState.RELEASED
        batch.released_at = now
        batch.released_by = actor.label[:200]
        batch.released_entry_id = entry_id
        batch.save(update_fields=["state", "released_at", "released_by", "released_entry"])
        record_audit(
            actor,
            AuditAction.VOUCHER_BATCH_RELEASED,
            batch,
            after={"number": batch.number, "cards": len(cards),
                   "amount": batch.face_value * len(cards)},
        )  # fmt: skip
    return batch


def _void_entry(
    tenant: Tenant, batch: VoucherBatch, source_type: str, source_id: str, count: int,
    reason: str, today: date,
) -> EntrySpec:  # fmt: skip
    amount = batch.face_value * count
    return EntrySpec(
        source_type,
        source_id,
        [(_liability(tenant, batch.utility), amount), (_sales_clearing(tenant), -amount)],
        today,
        memo=records_text(
            gettext_noop("Recharge cards voided, batch %(number)s: %(count)s × %(face)s: "
                         "%(reason)s"),
            number=f"{batch.number:06d}", count=count, face=batch.face_value, reason=reason,
        ),
    )  # fmt: skip


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise field_error("reason", _("A reason is required."), "required")
    return reason[:300]


def void_card(
    actor: Principal, card: VoucherCard, reason: str, *, now: datetime | None = None
) -> VoucherCard:
    """Void an unredeemed card (lost, stolen, damaged); a released card's liability is
    reversed against the sellers' clearing account."""
    reason = _reason(reason)
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=tenant.zone)
    with transaction.atomic():
        card = VoucherCard.objects.select_for_update().select_related("batch").get(pk=card.pk)
        if card.state != VoucherCardState.UNREDEEMED:
            raise PaymentConflict(
                _("Only an unredeemed card is voided; this one is %(state)s.")
                % {"state": VoucherCardState(card.state).label},
                code=f"card_{card.state}",
            )
        if card.batch.state == VoucherBatchState.RELEASED:
            entry = _void_entry(tenant, card.batch, "voucher_void", str(card.pk), 1, reason, today)
            post_entries(actor, [entry])
        card.state = VoucherCardState.VOID
        card.void_reason = reason
        card.voided_at = now
        card.save(update_fields=["state", "void_reason", "voided_at"])
        record_audit(
            actor,
            AuditAction.VOUCHER_CARD_VOIDED,
            card,
            after={"serial": card.serial, "batch": card.batch.number, "reason": reason},
        )
    return card


def void_batch(
    actor: Principal, batch: VoucherBatch, reason: str, *, now: datetime | None = None
) -> VoucherBatch:
    """Void a batch: every card still unredeemed is void, and a released batch's remaining
    liability is reversed; redeemed cards stay redeemed. The PIN file, if still there, goes."""
    reason = _reason(reason)
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=tenant.zone)
    with transaction.atomic():
        batch = VoucherBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.state == VoucherBatchState.VOID:
            raise PaymentConflict(_("The batch is void already."), code="batch_void")
        cards = _unredeemed(batch)
        if cards and batch.state == VoucherBatchState.RELEASED:
            entry = _void_entry(
                tenant, batch, "voucher_batch_void", str(batch.pk), len(cards), reason, today
            )
            post_entries(actor, [entry])
        VoucherCard.objects.filter(pk__in=[card.pk for card in cards]).update(
            state=VoucherCardState.VOID, void_reason=reason, voided_at=now
        )
        VoucherPinFile.objects.filter(batch=batch).delete()
        batch.state = VoucherBatchState.VOID
        batch.void_reason = reason
        batch.voided_at = now
        batch.save(update_fields=["state", "void_reason", "voided_at"])
        record_audit(
            actor,
            AuditAction.VOUCHER_BATCH_VOIDED,
            batch,
            after={"number": batch.number, "cards_voided": len(cards), "reason": reason},
        )
    return batch


def unlock_card(actor: Principal, card: VoucherCard, *, now: datetime | None = None) -> VoucherCard:
    """Clear the wrong PINs counted on the card so far (an administrator, after checking with
    the customer who holds it)."""
    now = now or timezone.now()
    with transaction.atomic():
        card = VoucherCard.objects.select_for_update().get(pk=card.pk)
        card.unlocked_at = now
        card.save(update_fields=["unlocked_at"])
        record_audit(actor, AuditAction.VOUCHER_CARD_UNLOCKED, card, after={"serial": card.serial})
    return card


def _counted_since(unlocked_at: datetime | None, now: datetime) -> datetime:
    since = now - WRONG_PIN_WINDOW
    return unlocked_at if unlocked_at is not None and unlocked_at > since else since


def wrong_pins(serial: str, unlocked_at: datetime | None, now: datetime) -> int:
    since = _counted_since(unlocked_at, now)
    return VoucherPinFailure.objects.filter(serial=serial, failed_at__gt=since).count()


def is_locked(card: VoucherCard, now: datetime | None = None) -> bool:
    return wrong_pins(card.serial, card.unlocked_at, now or timezone.now()) >= WRONG_PINS_PER_CARD


def _lock_end(failures: list[datetime]) -> datetime | None:
    """When a serial with these counted failures (newest first) unlocks by itself: once the
    fifth newest is an hour old, fewer than five count; None when it is not locked."""
    if len(failures) < WRONG_PINS_PER_CARD:
        return None
    return failures[WRONG_PINS_PER_CARD - 1] + WRONG_PIN_WINDOW


def locked_until(cards: list[VoucherCard], now: datetime | None = None) -> dict[int, datetime]:
    """The unredeemed cards among ``cards`` locked by wrong PINs, with when each unlocks by
    itself (an administrator may unlock it sooner). One query for a page of cards."""
    now = now or timezone.now()
    waiting = [card for card in cards if card.state == VoucherCardState.UNREDEEMED]
    if not waiting:
        return {}
    failures: dict[str, list[datetime]] = {}
    found = VoucherPinFailure.objects.filter(
        serial__in=[card.serial for card in waiting], failed_at__gt=now - WRONG_PIN_WINDOW
    ).order_by("serial", "-failed_at")
    for serial, failed_at in found.values_list("serial", "failed_at"):
        failures.setdefault(serial, []).append(failed_at)
    locks: dict[int, datetime] = {}
    for card in waiting:
        since = _counted_since(card.unlocked_at, now)
        counted = [at for at in failures.get(card.serial, []) if at > since]
        if (end := _lock_end(counted)) is not None:
            locks[card.pk] = end
    return locks


class WrongPin(ValidationError):
    """A wrong PIN (or an unknown serial: the same answer), with how many tries the serial has
    left before it locks; the API's error body carries the number as ``tries_left``."""

    def __init__(self, tries_left: int) -> None:
        if tries_left > 0:
            message = ngettext(
                "The serial or the PIN is wrong: %(left)d try left before this card locks for "
                "up to an hour.",
                "The serial or the PIN is wrong: %(left)d tries left before this card locks for "
                "up to an hour.",
                tries_left,
            ) % {"left": tries_left}
        else:
            message = _(
                "The serial or the PIN is wrong: this card is now locked for up to an hour, or "
                "until an administrator unlocks it."
            )
        super().__init__({"pin": ValidationError(message, code="wrong_pin")})
        self.tries_left = tries_left
        self.error_extra = {"tries_left": tries_left}


# --- redemption --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrongPinCounted:
    counted: int  # the serial's wrong PINs counted now, this one included


def redeem_card(
    actor: Principal,
    *,
    account: Account,
    serial: str,
    pin: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> PaymentResult:
    """Redeem a card onto the account as a payment of its face value (see the overview).
    Refusals are recorded as failed payment attempts; a wrong PIN is counted as well."""
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    serial = normalise_digits(serial)
    pin = normalise_digits(pin)
    source = payment_source(actor, Channel.VOUCHER, "")
    attempt = AttemptRequest(
        channel=Channel.VOUCHER, account_number=account.number[:32],
        idempotency_key=idempotency_key[:64], external_reference=serial[:64],
    )  # fmt: skip
    try:
        with transaction.atomic():
            result = _redeem(actor, tenant, account, serial, pin, idempotency_key, source, now)
        if isinstance(result, WrongPinCounted):
            # the wrong PIN is counted (committed); the answer is the same for a serial that
            # does not exist (its wrong PINs are counted too), so it reveals nothing
            raise WrongPin(max(WRONG_PINS_PER_CARD - result.counted, 0))
        return result
    except PaymentConflict as exc:
        # A key reused for another redemption is a conflict; a card already redeemed (or
        # void, expired) is refused by a rule.
        outcome = (
            AttemptOutcome.CONFLICT
            if exc.code == "idempotency_conflict"
            else AttemptOutcome.REFUSED
        )
        record_failed_attempt(
            actor, attempt, outcome, Failure.of(exc), account=account,
            payment_id=exc.payment_id, source=source,
        )  # fmt: skip
        raise
    except ValidationError as exc:
        record_failed_attempt(
            actor, attempt, AttemptOutcome.REFUSED, Failure.of(exc), account=account,
            source=source,
        )  # fmt: skip
        raise


def _redeem(
    actor: Principal, tenant: Tenant, account: Account, serial: str, pin: str,
    idempotency_key: str, source: str, now: datetime,
) -> PaymentResult | WrongPinCounted:  # fmt: skip
    """The redemption under the card's lock; for a wrong PIN, how many the serial counts now."""
    if not idempotency_key:
        raise field_error(
            "idempotency_key", _("A redemption needs an idempotency key."), "required"
        )
    if problem := serial_problem(serial):
        raise field_error("serial", problem, "invalid_serial")
    if not re.fullmatch(rf"\d{{{PIN_DIGITS}}}", pin):
        raise field_error(
            "pin", _("A PIN has %(digits)d digits.") % {"digits": PIN_DIGITS}, "invalid_pin"
        )
    recent = VoucherPinFailure.objects.filter(
        actor_kind=actor.kind, actor_id=actor.id, failed_at__gt=now - WRONG_PIN_WINDOW
    )
    if recent.count() >= WRONG_PINS_PER_ACTOR:
        raise field_error(
            "pin",
            _("Too many wrong PINs in the last hour: redemptions are stopped for a while. "
              "Ask an administrator if a customer's card is genuine."),
            "too_many_wrong_pins",
        )  # fmt: skip
    card = (
        VoucherCard.objects.select_for_update(of=("self",))
        .select_related("batch")
        .filter(serial=serial)
        .first()
    )
    unlocked_at = card.unlocked_at if card else None
    counted = wrong_pins(serial, unlocked_at, now)
    if counted >= WRONG_PINS_PER_CARD:
        failures = VoucherPinFailure.objects.filter(
            serial=serial, failed_at__gt=_counted_since(unlocked_at, now)
        ).order_by("-failed_at")
        end = _lock_end(list(failures.values_list("failed_at", flat=True)))
        assert end is not None
        raise field_error(
            "serial",
            _("Too many wrong PINs for this serial: it is locked until %(time)s, or until an "
              "administrator unlocks it.")
            % {"time": timezone.localtime(end, tenant.zone).strftime("%H:%M")},
            "card_locked",
        )  # fmt: skip
    if card is None or not hmac.compare_digest(pin_hash(tenant.pk, serial, pin), card.pin_hash):
        VoucherPinFailure.objects.create(
            tenant=tenant, serial=serial, card=card, actor_kind=actor.kind, actor_id=actor.id,
            failed_at=now,
        )  # fmt: skip
        return WrongPinCounted(counted + 1)
    batch = card.batch
    request = PaymentRequest(
        account, Channel.VOUCHER, batch.face_value, idempotency_key, external_reference=serial
    )
    first = Payment.objects.filter(
        channel=Channel.VOUCHER, source=source, idempotency_key=idempotency_key
    ).first()
    if first is not None:
        if first.digest != request.digest:
            raise PaymentConflict(
                _("This idempotency key was used for another payment."),
                code="idempotency_conflict",
                payment_id=first.pk,
            )
        return PaymentResult(first, created=False)
    today = timezone.localdate(now, timezone=tenant.zone)
    if card.state == VoucherCardState.REDEEMED:
        raise PaymentConflict(
            _("This card was redeemed already."), code="card_redeemed", payment_id=card.payment_id
        )
    if card.state == VoucherCardState.VOID:
        raise field_error("serial", _("This card is void."), "card_void")
    if card.state == VoucherCardState.EXPIRED or batch.expires_on < today:
        raise field_error(
            "serial",
            _("This card expired on %(day)s.") % {"day": batch.expires_on.isoformat()},
            "card_expired",
        )
    if batch.state != VoucherBatchState.RELEASED:
        raise field_error("serial", _("This card has not been released for sale."), "not_released")
    if batch.utility and batch.utility != account.utility:
        raise field_error(
            "account",
            _("This card tops up %(utility)s accounts only.")
            % {"utility": Utility(batch.utility).label},
            "wrong_utility",
        )
    result = post_redemption(
        actor, request, source, now, receiving=_liability(tenant, batch.utility)
    )
    card.state = VoucherCardState.REDEEMED
    card.payment = result.payment
    card.redeemed_at = now
    card.save(update_fields=["state", "payment", "redeemed_at"])
    record_audit(
        actor,
        AuditAction.VOUCHER_CARD_REDEEMED,
        card,
        after={"serial": serial, "batch": batch.number, "account": account.number,
               "amount": batch.face_value, "payment": result.payment.pk},
    )  # fmt: skip
    return result


def reopen_redeemed_card(actor: Principal, payment: Payment) -> None:
    """A redemption's payment was reversed: its liability is back in the books, so the card is
    redeemable again (the reversal calls this in its transaction)."""
    card = VoucherCard.objects.select_for_update().filter(payment=payment).first()
    if card is None:
        return
    card.state = VoucherCardState.UNREDEEMED
    card.payment = None
    card.redeemed_at = None
    card.save(update_fields=["state", "payment", "redeemed_at"])
    record_audit(
        actor,
        AuditAction.VOUCHER_CARD_REOPENED,
        card,
        after={"serial": card.serial, "payment": payment.pk},
    )


# --- expiry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpirySummary:
    batches: int
    cards: int
    amount: Decimal


def expire_cards(actor: Principal, *, today: date | None = None) -> ExpirySummary:
    """Expire the unredeemed cards of every batch of the actor's tenant whose last day has
    passed; for a released batch, take what is left of its liability to income. Safe to run
    twice (a card expires once; the posting's source is the batch and the day)."""
    tenant = actor.tenant
    assert tenant is not None
    today = today or timezone.localdate(timezone=tenant.zone)
    due = (
        VoucherBatch.objects.filter(expires_on__lt=today)
        .exclude(state=VoucherBatchState.VOID)
        .filter(cards__state=VoucherCardState.UNREDEEMED)
        .distinct()
        .order_by("pk")
    )
    batches = cards = 0
    amount = Decimal("0.00")
    for batch_id in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            batch = VoucherBatch.objects.select_for_update().get(pk=batch_id)
            expiring = _unredeemed(batch)
            if not expiring:
                continue
            if batch.state == VoucherBatchState.RELEASED:
                value = batch.face_value * len(expiring)
                income = tenant_ledger_account(
                    tenant,
                    LedgerKind.REVENUE,
                    utility=batch.utility,
                    component=EXPIRED_COMPONENT,
                    name=records_text(gettext_noop("Income, expired recharge cards")),
                ).pk
                entry = EntrySpec(
                    "voucher_expiry",
                    f"{batch.pk}:{today.isoformat()}",
                    [(_liability(tenant, batch.utility), value), (income, -value)],
                    today,
                    memo=records_text(
                        gettext_noop("Recharge cards expired, batch %(number)s: %(count)s × "
                                     "%(face)s"),
                        number=f"{batch.number:06d}", count=len(expiring), face=batch.face_value,
                    ),
                )  # fmt: skip
                post_entries(actor, [entry])
                amount += value
            VoucherCard.objects.filter(pk__in=[card.pk for card in expiring]).update(
                state=VoucherCardState.EXPIRED, expired_on=today
            )
            record_audit(
                actor,
                AuditAction.VOUCHER_CARDS_EXPIRED,
                batch,
                after={"number": batch.number, "cards": len(expiring), "day": today},
            )
            batches += 1
            cards += len(expiring)
    return ExpirySummary(batches, cards, amount)


def batch_counts(batch_ids: list[int]) -> dict[int, dict[str, int]]:
    """Cards per state of each batch: {batch id: {state: count}}."""
    counts: dict[int, dict[str, int]] = {
        batch_id: dict.fromkeys(VoucherCardState.values, 0) for batch_id in batch_ids
    }
    rows = (
        VoucherCard.objects.filter(batch_id__in=batch_ids)
        .values_list("batch_id", "state")
        .annotate(n=Count("pk"))
    )
    for batch_id, state, n in rows:
        counts[batch_id][state] = n
    return counts
