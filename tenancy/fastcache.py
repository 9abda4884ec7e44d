"""A cache for the hottest path (every API request), one Redis round trip per call.

Django's Redis cache builds a new client object for every call, which costs more than the
round trip on a request that does little else. This module keeps one client per process (redis-py
clients are thread-safe and pool their connections) and stores JSON. Without ``REDIS_URL``
(the single-process demo and the SQLite tests) it falls back to Django's cache.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache

_client: redis.Redis | None = None


def redis_client() -> redis.Redis | None:
    global _client  # one client per process, made on first use
    if not settings.REDIS_URL:
        return None
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


def _key(key: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:fast:{key}"


def get_json(key: str) -> Any | None:
    client = redis_client()
    if client is None:
        return cache.get(_key(key))
    raw = client.get(_key(key))
    return json.loads(raw) if raw is not None else None


def set_json(key: str, value: Any, seconds: int) -> None:
    client = redis_client()
    if client is None:
        cache.set(_key(key), value, seconds)
    else:
        client.set(_key(key), json.dumps(value), ex=seconds)


def delete(*keys: str) -> None:
    if not keys:
        return
    client = redis_client()
    if client is None:
        cache.delete_many([_key(key) for key in keys])
    else:
        client.delete(*[_key(key) for key in keys])


def count_in_window(key: str, seconds: int) -> int:
    """Add one to a counter that expires after ``seconds``; returns the new count."""
    client = redis_client()
    if client is None:
        cache.add(_key(key), 0, seconds)
        return cache.incr(_key(key))
    pipe = client.pipeline(transaction=False)
    pipe.incr(_key(key))
    pipe.expire(_key(key), seconds)
    return int(pipe.execute()[0])


def get_json_and_count(key: str, counter: str, seconds: int) -> tuple[Any | None, int]:
    """``get_json(key)`` and ``count_in_window(counter, seconds)`` in one round trip."""
    client = redis_client()
    if client is None:
        return get_json(key), count_in_window(counter, seconds)
    pipe = client.pipeline(transaction=False)
    pipe.get(_key(key))
    pipe.incr(_key(counter))
    pipe.expire(_key(counter), seconds)
    raw, count, _expiry_set = pipe.execute()
    return (json.loads(raw) if raw is not None else None), int(count)
