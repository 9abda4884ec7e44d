"""A refused or missing page is one line in the server log, printed once, with no traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client, override_settings

from tests.world import World

pytestmark = pytest.mark.django_db


@contextmanager
def _server_log() -> Iterator[io.StringIO]:
    """What the log handlers of ``django.request`` and its ancestors print, in one buffer
    (pytest's own capturing handlers left out)."""
    printed = io.StringIO()
    handlers = [
        handler
        for name in ("django.request", "django", "")
        for handler in logging.getLogger(name).handlers
        if type(handler) is logging.StreamHandler
    ]
    streams = [handler.setStream(printed) for handler in handlers]
    try:
        yield printed
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


@pytest.mark.parametrize("debug", [True, False])
def test_a_403_is_printed_once_as_one_line_without_a_traceback(world: World, debug: bool) -> None:
    client = Client()
    client.force_login(world.bob)  # a cashier: no staff administration
    with override_settings(DEBUG=debug), _server_log() as printed:
        assert client.get("/console/admin/staff/").status_code == 403
    lines = printed.getvalue().splitlines()
    assert len(lines) == 1
    assert "Forbidden" in lines[0] and "/console/admin/staff/" in lines[0]
