"""API client tokens: 256 random bits, shown once, stored as a SHA-256 hash."""

import hashlib
import secrets

TOKEN_PREFIX = "bars_"  # noqa: S105


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    """The first characters after the fixed prefix, kept to tell tokens apart in lists."""
    return token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8]
