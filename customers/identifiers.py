"""Identifiers with check characters: account numbers, identity card numbers, unified social
credit codes, and mainland mobile numbers.

A mistyped number is caught where it is typed (at the counter, in a bank's request) instead of
reaching the wrong customer.
"""

from __future__ import annotations

import re
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# --- account numbers (户号): digits with a Luhn check digit ----------------------------------

ACCOUNT_NUMBER_BASE_DIGITS = 9


def luhn_check_digit(base: str) -> str:
    total = 0
    for position, char in enumerate(reversed(base)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def make_account_number(sequence_value: int) -> str:
    base = f"{sequence_value:0{ACCOUNT_NUMBER_BASE_DIGITS}d}"
    return base + luhn_check_digit(base)


def account_number_problem(number: str) -> str | None:
    """Why ``number`` cannot be an account number, or ``None`` when it can."""
    if not re.fullmatch(r"\d{6,20}", number):
        return "format"
    if luhn_check_digit(number[:-1]) != number[-1]:
        return "check_digit"
    return None


def validate_account_number(number: str) -> None:
    problem = account_number_problem(number)
    if problem == "format":
        raise ValidationError(_("An account number is 6 to 20 digits."), code="invalid")
    if problem == "check_digit":
        raise ValidationError(
            _("The check digit does not match: the account number was probably mistyped."),
            code="bad_check_digit",
        )


# --- resident identity card numbers (身份证号, GB 11643) -----------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def identity_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 over the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalise_identity_number(value: str) -> str:
    return re.sub(r"\s", "", value).upper()


def validate_identity_number(value: str) -> None:
    number = normalise_identity_number(value)
    if not re.fullmatch(r"\d{17}[\dX]", number):
        raise ValidationError(
            _("An identity card number is 17 digits and a check character."), code="invalid"
        )
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise ValidationError(
            _("The birth date inside the identity card number is not a date."), code="invalid"
        ) from exc
    if identity_check_char(number[:17]) != number[17]:
        raise ValidationError(
            _("The identity card number's check character does not match."),
            code="bad_check_digit",
        )


# --- unified social credit codes (统一社会信用代码, GB 32100) ------------------------------------

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_char(first17: str) -> str:
    """GB 32100: weighted sum modulo 31 over the first 17 characters."""
    total = sum(
        _USCC_CHARS.index(char) * weight
        for char, weight in zip(first17, _USCC_WEIGHTS, strict=True)
    )
    return _USCC_CHARS[(31 - total % 31) % 31]


def validate_credit_code(value: str) -> None:
    code = normalise_identity_number(value)
    if len(code) != 18 or any(char not in _USCC_CHARS for char in code):
        raise ValidationError(
            _("A unified social credit code is 18 digits and capital letters."), code="invalid"
        )
    if credit_code_check_char(code[:17]) != code[17]:
        raise ValidationError(
            _("The unified social credit code's check character does not match."),
            code="bad_check_digit",
        )


def mask_identifier(value: str) -> str:
    """Identity and credit codes as staff without the need see them: 110101********1234."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


_BANK_ACCOUNT = re.compile(r"[0-9 ]+")
BANK_ACCOUNT_DIGITS = (12, 30)


def normalise_bank_account(value: str) -> str:
    """A mainland bank card or account number as typed (digits, spaces between groups allowed)
    stored as its digits only: 12 to 30 of them (a UnionPay card has 16 to 19, a corporate
    account up to 30). Anything else is a typing error, refused before money is sent there."""
    typed = value.strip()
    digits = typed.replace(" ", "")
    low, high = BANK_ACCOUNT_DIGITS
    if not _BANK_ACCOUNT.fullmatch(typed) or not low <= len(digits) <= high:
        raise ValidationError(
            _(
                "A bank account number is 12 to 30 digits, spaces between groups allowed: "
                "6222 0200 1234 5678."
            ),
            code="invalid_bank_account",
        )
    return digits


def mask_bank_account(value: str) -> str:
    """A bank account or card number as staff without the need see it: its first and last four
    digits, ``6222 **** **** 1234`` (enough to tell two accounts of a customer apart)."""
    compact = re.sub(r"[\s-]", "", value)
    if len(compact) <= 8:
        return "*" * len(compact)
    return f"{compact[:4]} **** **** {compact[-4:]}"


# --- mainland mobile numbers ------------------------------------------------------------------

_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")


def normalise_mobile(value: str) -> str:
    """``+86`` and the 11 digits; spaces, dashes and a leading 86 or +86 are accepted."""
    compact = re.sub(r"[\s\-()]", "", value)
    match = _MOBILE.match(compact)
    if not match:
        raise ValidationError(
            _("A mobile number is a mainland number: 11 digits starting 13–19, optionally +86."),
            code="invalid_mobile",
        )
    return "+86" + match.group(1)


def mask_mobile(value: str) -> str:
    digits = value.removeprefix("+86")
    if len(digits) != 11:
        return "*" * len(value)
    return f"+86 {digits[:3]}****{digits[-4:]}"


def mask_email(value: str) -> str:
    local, _at, domain = value.partition("@")
    if not domain:
        return "*" * len(value)
    return f"{local[:1]}***@{domain}"
