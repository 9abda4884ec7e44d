"""Server-side prepared statements (PostgreSQL's ``PREPARE`` / ``EXECUTE``) for the statements
every payment runs.

Parsing and planning was most of what those statements cost the server: measured on a
payment's six round trips (``bench.payments``' path, EXPLAIN's planning time and the backend's
CPU), about 1 ms of its 3.6 ms, where executing them took 0.7 ms. psycopg2 sends every
statement as text, so the server plans each one afresh; here a statement is prepared on a
connection the first time it runs there, under a name derived from its text, and executed by
name after. The connection's ``plan_cache_mode`` (``force_generic_plan``, set in
``config/settings.py``) keeps the plan made the first time: the statements look rows up by
key, so the generic plan is the plan a custom one would be.

A text may hold several statements separated by semicolons, sent in one round trip: each part
with parameters is prepared, one without (``SET CONSTRAINTS ALL IMMEDIATE``) is sent as it is;
a semicolon is never part of a statement here. Parameters as psycopg2 takes them: a sequence
for ``%s`` or a mapping for ``%(name)s``. A prepared statement outlives a transaction that
rolls back (the server keeps it) but not its connection; a connection keeps at most
``PER_CONNECTION`` of them and runs any further text as it is. Other databases run the text as
it is.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

PER_CONNECTION = 500
_MARK = re.compile(r"%\((\w+)\)s|%s|%%")


@dataclass(frozen=True)
class _Part:
    """One statement of a text: as sent when it is not prepared (``text``, psycopg2's marks),
    its server form (``server``, ``$n`` marks) and name, and the parameters it takes, in order:
    their positions in a sequence, or their names in a mapping."""

    text: str
    server: str
    name: str
    positions: tuple[int, ...]
    names: tuple[str, ...]


# Parts by text: what a text's parts are does not depend on the connection.
_parts: dict[str, tuple[_Part, ...]] = {}
# The names prepared on each open connection (psycopg2's connection object).
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _split(sql: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    taken = 0  # positional parameters taken by the parts before
    for text in sql.split(";"):
        if text.strip():
            part = _part(text, taken)
            parts.append(part)
            taken += len(part.positions)
    return tuple(parts)


def _part(text: str, taken: int) -> _Part:
    """A statement with its marks numbered: a positional one each its own number, a named one
    the same number wherever it recurs."""
    numbers: dict[str, int] = {}
    positions: list[int] = []
    server: list[str] = []
    end = 0
    for match in _MARK.finditer(text):
        server.append(text[end : match.start()])
        end = match.end()
        if match.group(0) == "%%":
            server.append("%")
            continue
        key = match.group(1) or f"#{len(positions)}"
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            if match.group(1) is None:
                positions.append(taken + len(positions))
        server.append(f"${numbers[key]}")
    server.append(text[end:])
    joined = "".join(server)
    names = tuple(key for key in numbers if not key.startswith("#"))
    digest = hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()[:20]
    return _Part(text, joined, f"bars_{digest}", tuple(positions), names)


def execute(cursor: CursorWrapper, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> None:
    """Run ``sql`` (one statement or several, see the module's overview) with ``params`` on
    ``cursor``, each statement that takes parameters prepared on the cursor's connection."""
    if connection.vendor != "postgresql":
        cursor.execute(sql, params)
        return
    parts = _parts.get(sql)
    if parts is None:
        if len(_parts) >= 10 * PER_CONNECTION:
            _parts.clear()
        parts = _parts[sql] = _split(sql)
    raw = connection.connection
    prepared = _prepared.get(raw)
    if prepared is None:
        prepared = _prepared[raw] = set()
    sent: list[str] = []
    values: list[Any] = []
    for part in parts:
        if not part.positions and not part.names:
            sent.append(part.text)
            continue
        if part.name not in prepared:
            if len(prepared) >= PER_CONNECTION:
                cursor.execute(sql, params)
                return
            cursor.execute(f"PREPARE {part.name} AS {part.server}")
            prepared.add(part.name)
        if isinstance(params, Mapping):
            taken = [params[name] for name in part.names]
        else:
            taken = [params[position] for position in part.positions]
        sent.append(f"EXECUTE {part.name}({', '.join(['%s'] * len(taken))})")
        values.extend(taken)
    cursor.execute("; ".join(sent), values)
