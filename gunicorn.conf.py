"""Gunicorn settings for the web process.

The Dockerfile's command, docker-compose.yml's ``web`` service and ``bench.api`` all start
gunicorn with this file (gunicorn also reads ``./gunicorn.conf.py`` by itself when started from
the project directory).

Each worker gets ready before it accepts its first connection:

- It loads Django's URL configuration, and with it every view module, DRF and drf-spectacular,
  and opens its database connection. Django leaves both to the first request, which then took
  220-290 ms against 3-4 ms for the next ones: after every start, and for every worker the
  arbiter replaces, one caller per worker waited for it.
- It then freezes what it has loaded (``gc.freeze()``): about 117,000 objects (modules,
  classes, functions, URL patterns) that live as long as the process. Python's full
  collections walked all of them, 80-200 ms each, every few hundred list requests in each
  worker; frozen, they are skipped and a full collection takes a few milliseconds.
"""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Runs in each worker once it has imported the application, before it accepts."""
    from django.db import DatabaseError, connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (importing the URL modules is the point)
    for connection in connections.all():
        try:
            connection.ensure_connection()
        except DatabaseError:
            # Serve anyway: the requests that need the database report the outage.
            worker.log.warning("database %r not reachable at worker start", connection.alias)
    gc.collect()  # what is garbage now would stay, frozen
    gc.freeze()
