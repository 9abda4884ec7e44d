"""Encrypted model fields for personal data (PIPL), with a keyed hash to search by.

Identity card numbers and phone numbers are stored as Fernet tokens made with the keys in
``DJANGO_FIELD_ENCRYPTION_KEY`` (comma-separated, newest first: a new key is prepended and
old rows still decrypt). A token differs every time, so equality search goes through a
separate ``…_hash`` column: HMAC-SHA256 of the normalised value under a key derived from the
oldest encryption key (the last in the list, kept while rows it encrypted exist), or under
``DJANGO_FIELD_HASH_KEY`` when that is set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

if TYPE_CHECKING:
    from collections.abc import Sequence


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "DJANGO_FIELD_ENCRYPTION_KEY must hold Fernet keys (32 url-safe base64 bytes); make "
            "one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from exc


def encrypt(plain: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored personal-data value does not decrypt with any configured key"
        ) from exc


def _hash_key() -> bytes:
    explicit = os.environ.get("DJANGO_FIELD_HASH_KEY", "")
    if explicit:
        return explicit.encode()
    seed = base64.urlsafe_b64decode(settings.FIELD_ENCRYPTION_KEYS[-1].encode())
    return hashlib.sha256(b"bars-search-hash:" + seed).digest()


def search_hash(normalised: str) -> str:
    """The keyed hash stored beside an encrypted value; empty for an empty value."""
    if not normalised:
        return ""
    return hmac.new(_hash_key(), normalised.encode(), hashlib.sha256).hexdigest()


class EncryptedCharField(models.TextField):
    """A string stored encrypted; ``mask`` gives the form shown to roles without the need."""

    def __init__(self, *args: Any, mask: Callable[[str], str] | None = None, **kwargs: Any):
        self.mask = mask
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str:
        if not value:
            return ""
        return decrypt(value)

    def get_prep_value(self, value: Any) -> str:
        value = super().get_prep_value(value)
        if not value:
            return ""
        return encrypt(str(value))
