"""Check digits catch mistyped numbers; masks hide what staff need not see."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from customers.identifiers import (
    account_number_problem,
    luhn_check_digit,
    make_account_number,
    mask_bank_account,
    mask_email,
    mask_identifier,
    mask_mobile,
    normalise_mobile,
    validate_credit_code,
    validate_identity_number,
)


def test_account_numbers_carry_a_luhn_check_digit() -> None:
    # 000000001: doubling every second digit from the right gives 2; (10 - 2) % 10 = 8.
    assert make_account_number(1) == "0000000018"
    assert luhn_check_digit("7992739871") == "3"  # the textbook example
    assert account_number_problem("0000000018") is None
    assert account_number_problem("0000000019") == "check_digit"
    assert account_number_problem("12ab56") == "format"


@given(
    base=st.integers(min_value=1, max_value=999_999_999),
    position=st.integers(0, 9),
    delta=st.integers(1, 9),
)
def test_any_single_mistyped_digit_is_caught(base: int, position: int, delta: int) -> None:
    number = make_account_number(base)
    digit = (int(number[position]) + delta) % 10
    mistyped = number[:position] + str(digit) + number[position + 1 :]
    assert account_number_problem(mistyped) == "check_digit"


@given(base=st.integers(min_value=1, max_value=999_999_999), position=st.integers(0, 8))
def test_swapping_two_neighbouring_digits_is_caught_unless_they_are_0_and_9_or_equal(
    base: int, position: int
) -> None:
    number = make_account_number(base)
    a, b = number[position], number[position + 1]
    swapped = number[:position] + b + a + number[position + 2 :]
    if a == b or {a, b} == {"0", "9"}:
        return  # Luhn's one known blind spot, and a swap that changes nothing
    assert account_number_problem(swapped) == "check_digit"


def test_identity_card_numbers_are_checked_by_iso_7064() -> None:
    validate_identity_number("11010519491231002X")  # the GB 11643 example
    validate_identity_number("11010519491231002x")  # lower-case x is the same number
    with pytest.raises(ValidationError) as wrong_check:
        validate_identity_number("110105194912310021")
    assert wrong_check.value.code == "bad_check_digit"
    with translation.override("en"):
        with pytest.raises(ValidationError) as no_such_date:
            validate_identity_number("110105194913310020")
        assert "birth date" in str(no_such_date.value.message)
    with pytest.raises(ValidationError):
        validate_identity_number("1101051949123100")


def test_unified_social_credit_codes_are_checked_by_gb_32100() -> None:
    validate_credit_code("91350100M000100Y43")
    with pytest.raises(ValidationError) as wrong_check:
        validate_credit_code("91350100M000100Y44")
    assert wrong_check.value.code == "bad_check_digit"
    with pytest.raises(ValidationError):
        validate_credit_code("91350100M000100I43")  # I is not in the code's alphabet


@pytest.mark.parametrize(
    "typed", ["13812345678", "+8613812345678", "86 138 1234 5678", "138-1234-5678"]
)
def test_mainland_mobile_numbers_are_normalised_to_plus_86(typed: str) -> None:
    assert normalise_mobile(typed) == "+8613812345678"


@pytest.mark.parametrize("typed", ["12812345678", "1381234567", "+85261234567", "abc"])
def test_other_numbers_are_not_mobile_numbers(typed: str) -> None:
    with pytest.raises(ValidationError):
        normalise_mobile(typed)


def test_masks_keep_only_the_ends() -> None:
    assert mask_identifier("11010519491231002X") == "110105********002X"
    assert mask_mobile("+8613812345678") == "+86 138****5678"
    assert mask_email("zhang.wei@example.com") == "z***@example.com"


def test_a_bank_account_is_masked_to_its_first_and_last_four_digits() -> None:
    assert mask_bank_account("6222020200112233445") == "6222 **** **** 3445"
    assert mask_bank_account("6222 0202 0011 2233") == "6222 **** **** 2233"
    assert mask_bank_account("12345678") == "********"  # too short to show any of it
