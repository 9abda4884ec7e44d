"""Small readers for settings taken from environment variables.

A production setting that is missing raises at start (``require``) instead of running on a
silent default; development defaults are spelled out where the setting is read. The
``require`` helpers are for production (``DJANGO_DEBUG=0``) only, and their errors say so.
"""

import os
from collections.abc import Sequence
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def _missing(name: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name} must be set when DJANGO_DEBUG=0: {why}")


def require(name: str, why: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise _missing(name, why)
    return value


def require_list(name: str, why: str) -> list[str]:
    values = env_list(name)
    if not values:
        raise _missing(name, why)
    return values


def require_url(name: str, schemes: Sequence[str], why: str) -> str:
    """A required URL of a service production cannot do without, refused unless its scheme is
    one of ``schemes``. The error names the scheme it got, never the URL (it may hold a
    password)."""
    value = require(name, why)
    scheme = urlsplit(value).scheme.lower()
    if scheme not in schemes:
        *others, last = [f"{option}://" for option in schemes]
        expected = f"{', '.join(others)} or {last}" if others else last
        got = f"{scheme}://" if scheme else "no scheme"
        raise ImproperlyConfigured(
            f"{name} must be a {expected} URL when DJANGO_DEBUG=0, got {got}: {why}"
        )
    return value
