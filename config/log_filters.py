"""Logging filters of the project (``LOGGING`` in the settings names them)."""

from __future__ import annotations

import logging

QUIET_STATUSES = frozenset({403, 404})


class ClientErrorLogFilter(logging.Filter):
    """A refused (403) or missing (404) page is one line in the log, without a traceback.

    Django's ``django.request`` logger logs a ``PermissionDenied`` or ``Http404`` with the
    exception attached, so every refusal would print a full traceback: the person asked for
    something they may not have, the code did not fail.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) in QUIET_STATUSES:
            record.exc_info = None
            record.exc_text = None
        return True
