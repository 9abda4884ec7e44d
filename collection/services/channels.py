"""Who may take which channel, whose idempotency keys a payment's key is unique among, and
which ledger account receives the money.

- Staff take the counter channels (cash, bank card); their keys are unique per cashier, and
  cash lands in the cashier's own cash-on-hand account, card payments in the card acquirer's
  clearing account.
- Integrations with a token take the bank channels (代收, 代扣) and the terminal's; keys are
  unique per API client, whose clearing account receives the money.
- Online payments name their provider (``wechat``, ``alipay``…): keys are unique per provider,
  whichever client relays its notifications, and the money lands in the provider's clearing
  account until it settles.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from collection.models import COUNTER_CHANNELS, INTEGRATION_CHANNELS, Channel
from collection.services.errors import field_error
from ledger.models import LedgerAccount, LedgerKind
from ledger.services import records_text, tenant_ledger_account
from tenancy.models import ActorKind, Tenant
from tenancy.principal import Principal

CARD_ACQUIRER = "card"


def check_channel(actor: Principal, channel: str, provider: str) -> None:
    """Refuse a channel the actor does not take, and an online payment without its provider
    (or a provider named for another channel)."""
    if channel == Channel.VOUCHER:
        raise field_error(
            "channel",
            _("A recharge card is redeemed with its PIN, not posted as a payment."),
            "channel_not_allowed",
        )
    if actor.kind == ActorKind.STAFF:
        allowed = COUNTER_CHANNELS
    elif actor.kind == ActorKind.API_CLIENT:
        allowed = INTEGRATION_CHANNELS
    else:
        allowed = frozenset()
    if channel not in allowed:
        raise field_error(
            "channel",
            _(
                "Staff take counter payments (cash, bank card); banks, online providers and "
                "terminals post theirs with their own token."
            ),
            "channel_not_allowed",
        )
    if channel == Channel.ONLINE and not provider:
        raise field_error("provider", _("An online payment names its provider."), "required")
    if channel != Channel.ONLINE and provider:
        raise field_error("provider", _("Only an online payment names a provider."))


def payment_source(actor: Principal, channel: str, provider: str) -> str:
    """Whose keys the payment's idempotency key is unique among."""
    if channel == Channel.ONLINE:
        return f"provider:{provider}"
    prefix = "user" if actor.kind == ActorKind.STAFF else "client"
    return f"{prefix}:{actor.id}"


def receiving_key(actor: Principal, channel: str, provider: str) -> tuple[str, str]:
    """The kind and holder of the ledger account a payment's money is debited to."""
    if channel == Channel.COUNTER_CASH:
        return LedgerKind.CASH, f"user:{actor.id}"
    if channel == Channel.COUNTER_CARD:
        return LedgerKind.CLEARING, CARD_ACQUIRER
    if channel == Channel.ONLINE:
        return LedgerKind.CLEARING, f"provider:{provider}"
    return LedgerKind.CLEARING, f"client:{actor.id}"


def receiving_account(tenant: Tenant, actor: Principal, channel: str, provider: str) -> int:
    """The ledger account the money of a payment is debited to (created on first use)."""
    kind, holder = receiving_key(actor, channel, provider)
    if channel == Channel.COUNTER_CASH:
        name = records_text(gettext_noop("Cash on hand, cashier %(name)s"), name=actor.label)
    elif channel == Channel.COUNTER_CARD:
        name = records_text(gettext_noop("Clearing, bank cards at the counter"))
    elif channel == Channel.ONLINE:
        name = records_text(gettext_noop("Clearing, online provider %(name)s"), name=provider)
    else:
        name = records_text(gettext_noop("Clearing, %(name)s"), name=actor.label)
    ledger: LedgerAccount = tenant_ledger_account(tenant, kind, holder=holder, name=name)
    return ledger.pk
