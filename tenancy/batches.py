"""Batch actions that are all or none: each item is tried in a savepoint; if any is refused,
the whole batch is rolled back and the refusal names every item at fault and why."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import transaction

Item = TypeVar("Item")
Result = TypeVar("Result")


def all_or_none(
    items: Iterable[Item],
    action: Callable[[Item], Result],
    name_of: Callable[[Item], object],
    field: str,
) -> list[Result]:
    """Apply ``action`` to every item in one transaction; a refusal of any rolls all back and
    raises a ValidationError on ``field`` listing "name: reason" for each refused item."""
    refused: list[str] = []
    done: list[Result] = []
    with transaction.atomic():
        for item in items:
            try:
                with transaction.atomic():
                    done.append(action(item))
            except ValidationError as exc:
                refused.append(f"{name_of(item)}: {' '.join(exc.messages)}")
        if refused:
            transaction.set_rollback(True)
    if refused:
        raise ValidationError({field: refused}, code="refused")
    return done
