"""Payment attempts that failed, kept so finance can trace them.

Every payment request that is refused (bad input, a rule, an idempotency key reused for
another payment) is recorded by ``record_failed_attempt`` after the failed transaction has
rolled back, so the record survives it; a bank or provider reports a rejection (a direct debit
refused for lack of funds, a card declined) with ``report_rejected_payment``. What was sent is
kept as text, as it was sent (an amount with three decimals included), cut to the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from collection.models import AttemptOutcome, PaymentAttempt
from collection.services.channels import check_channel, payment_source
from customers.models import Account
from tenancy.audit import AuditAction, record_audit
from tenancy.context import get_request_meta
from tenancy.money import Money
from tenancy.principal import Principal

_LIMITS = {
    "channel": 32,
    "account_number": 32,
    "amount": 32,
    "idempotency_key": 64,
    "external_reference": 64,
    "provider": 32,
}


@dataclass(frozen=True)
class AttemptRequest:
    """What a payment request sent, as text."""

    channel: str = ""
    account_number: str = ""
    amount: str = ""
    idempotency_key: str = ""
    external_reference: str = ""
    provider: str = ""

    @classmethod
    def from_data(cls, data: Any) -> AttemptRequest:
        """From a request body of any shape (a list, numbers, nested objects: all as text)."""
        if not isinstance(data, Mapping):
            return cls()
        values = {"account_number": data.get("account")}
        values.update({name: data.get(name) for name in _LIMITS if name != "account_number"})
        return cls._cut(values)

    @classmethod
    def _cut(cls, values: Mapping[str, Any]) -> AttemptRequest:
        """Each value as text, cut to what its column holds."""
        return cls(
            **{
                name: ("" if value is None else str(value))[: _LIMITS[name]]
                for name, value in values.items()
            }
        )

    @classmethod
    def of(
        cls,
        *,
        channel: str,
        account_number: str,
        amount: Decimal,
        idempotency_key: str = "",
        external_reference: str = "",
        provider: str = "",
    ) -> AttemptRequest:
        return cls._cut(
            {
                "channel": channel,
                "account_number": account_number,
                "amount": amount,
                "idempotency_key": idempotency_key,
                "external_reference": external_reference,
                "provider": provider,
            }
        )


@dataclass(frozen=True)
class Failure:
    """Why a request failed: a stable code, a message, and the messages per field."""

    code: str
    message: str
    fields: dict[str, list[str]]

    @classmethod
    def of(cls, error: Any) -> Failure:
        """From a Django ``ValidationError`` or a DRF serializer's ``errors``."""
        if isinstance(error, ValidationError):
            if hasattr(error, "error_dict"):
                detail: Any = {
                    name: [(e.code or "invalid", m) for e in errors for m in e.messages]
                    for name, errors in error.error_dict.items()
                }
            else:
                detail = {
                    "": [(e.code or "invalid", m) for e in error.error_list for m in e.messages]
                }
        else:
            detail = {
                name: [(getattr(m, "code", "invalid"), str(m)) for m in _flat(messages)]
                for name, messages in dict(error).items()
            }
        fields = {
            name: [message for _code, message in pairs]
            for name, pairs in detail.items()
            if name not in ("", "__all__", "non_field_errors")
        }
        pairs = [pair for messages in detail.values() for pair in messages]
        code, message = pairs[0] if pairs else ("invalid", "")
        return cls(str(code)[:64], str(message)[:500], fields)


def _flat(messages: Any) -> list[Any]:
    if isinstance(messages, Mapping):
        return [m for value in messages.values() for m in _flat(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _flat(value)]
    return [messages]


def record_failed_attempt(
    actor: Principal,
    request: AttemptRequest,
    outcome: str,
    failure: Failure,
    *,
    account: Account | None = None,
    payment_id: int | None = None,
    source: str = "",
) -> PaymentAttempt:
    """Record a payment request that failed. Call it after the failed transaction: it writes
    in a transaction of its own (or in the caller's, past the rolled-back savepoint)."""
    tenant = actor.tenant
    assert tenant is not None
    meta = get_request_meta()
    with transaction.atomic():
        return PaymentAttempt.objects.create(
            tenant=tenant,
            site_id=account.site_id if account else None,
            account=account,
            payment_id=payment_id,
            outcome=outcome,
            code=failure.code,
            reason=failure.message,
            fields=failure.fields,
            channel=request.channel,
            account_number=request.account_number,
            amount=request.amount,
            idempotency_key=request.idempotency_key,
            external_reference=request.external_reference,
            source=source[:48],
            request_id=meta.request_id if meta else "",
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label[:200],
        )


def report_rejected_payment(
    actor: Principal,
    *,
    account: Account,
    channel: str,
    amount: Decimal,
    reason: str,
    external_reference: str = "",
    provider: str = "",
    idempotency_key: str = "",
) -> PaymentAttempt:
    """A bank, provider or terminal (or a cashier, for a declined card) reports a payment
    that was not made: recorded with its reason, beside the refused requests."""
    Money(amount)
    check_channel(actor, channel, provider)
    with transaction.atomic():
        attempt = record_failed_attempt(
            actor,
            AttemptRequest.of(
                channel=channel, account_number=account.number, amount=amount,
                idempotency_key=idempotency_key, external_reference=external_reference,
                provider=provider,
            ),
            AttemptOutcome.REJECTED,
            Failure("rejected", reason[:500], {}),
            account=account,
            source=payment_source(actor, channel, provider),
        )  # fmt: skip
        record_audit(
            actor,
            AuditAction.PAYMENT_REJECTION_REPORTED,
            attempt,
            after={"account": account.number, "channel": channel, "amount": amount,
                   "external_reference": external_reference, "reason": reason},
        )  # fmt: skip
    return attempt
