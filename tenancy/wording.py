"""Joining pieces of translated text in the active language: Chinese sentences follow one
another without a space and its list items take the enumeration comma (、); English takes a
space between sentences and a comma between items."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import get_language


def in_chinese() -> bool:
    return (get_language() or "").startswith("zh")


def join_sentences(parts: Iterable[str]) -> str:
    return ("" if in_chinese() else " ").join(parts)


def join_list(items: Iterable[str]) -> str:
    return ("、" if in_chinese() else ", ").join(items)
