"""A cache for the hottest path (every API request), one Redis round trip per call.

Django's Redis cache builds a new client object for every call, which costs more than the
round trip on a request that does little else. This module keeps one client per process (redis-py
clients are thread-safe and pool their connections) and stores JSON.

Without ``REDIS_URL`` (the demo, debug settings, the SQLite tests) nothing is kept: every
lookup misses and callers read the database. A cache in one process's memory could not be
emptied by another process, so a token revoked, rotated or regranted through one web worker
would go on working in the others until its entry expired. Counters (throttles) are then kept
in this process's memory and count each process apart.

The token lookup and the throttle counter of every API request go in one write and one read
(``get_and_count``): the three commands (GET, INCR, EXPIRE) sent on one pooled connection
without redis-py's ``Pipeline`` object, whose bookkeeping cost 20 µs a request of the 57 µs the
round trip took in Python.
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


def get_raw(key: str) -> bytes | str | None:
    """The JSON text stored under ``key``, undecoded (never anything without Redis)."""
    client = redis_client()
    return None if client is None else client.get(_key(key))


def get_json(key: str) -> Any | None:
    raw = get_raw(key)
    return json.loads(raw) if raw is not None else None


def set_json(key: str, value: Any, seconds: int) -> None:
    client = redis_client()
    if client is not None:
        client.set(_key(key), json.dumps(value), ex=seconds)


def delete(*keys: str) -> None:
    if not keys:
        return
    client = redis_client()
    if client is not None:
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


def reset_count(key: str) -> None:
    """Start the counter ``key`` again from zero."""
    client = redis_client()
    if client is None:
        cache.delete(_key(key))
    else:
        client.delete(_key(key))


def get_and_count(key: str, counter: str, seconds: int) -> tuple[bytes | str | None, int]:
    """The stored JSON text under ``key`` (undecoded: callers that see the same text again can
    skip decoding it) and ``count_in_window(counter, seconds)``, in one round trip."""
    client = redis_client()
    if client is None:
        return None, count_in_window(counter, seconds)
    counter_key = _key(counter)
    raw, count, _expiry_set = _round_trip(
        client, ("GET", _key(key)), ("INCR", counter_key), ("EXPIRE", counter_key, seconds)
    )
    return raw, int(count)


def _round_trip(client: redis.Redis, *commands: tuple[Any, ...]) -> list[Any]:
    """Send ``commands`` in one write on a pooled connection and read their replies in order.

    As redis-py's pipeline does, a connection or timeout error is retried under the client's
    retry policy on a reconnected socket; a connection that fails any other way (a command's
    error reply, an interruption) is disconnected before it goes back to the pool, so no unread
    reply is ever left on a pooled socket for the next caller to read as its own.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    packed = connection.pack_commands(commands)

    def send_and_read() -> list[Any]:
        connection.send_packed_command(packed)
        return [connection.read_response() for _command in commands]

    try:
        return connection.retry.call_with_retry(
            send_and_read, lambda _error: connection.disconnect()
        )
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
