"""The refusals of the collect stage that are not bad input but a clash with what was done
before: the API answers them 409."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class PaymentConflict(ValidationError):
    """An idempotency key reused for another payment, a payment reversed already."""

    def __init__(self, message: str, code: str, payment_id: int | None = None) -> None:
        super().__init__(message, code=code)
        self.payment_id = payment_id


def field_error(field: str, message: str, code: str = "invalid") -> ValidationError:
    """A refusal naming the field at fault, with a stable code (a dict of plain messages would
    lose it)."""
    return ValidationError({field: ValidationError(message, code=code)})
