"""API plumbing shared by every endpoint: JSON parsing, pagination, throttling, and the
exceptions the error handler (``config.errors``) turns into the error body.

This module must not import ``rest_framework.views``: DRF's settings import the classes here
while ``APIView`` is being defined.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from tenancy import fastcache
from tenancy.throttling import current_window

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO

    from rest_framework.request import Request
    from rest_framework.views import APIView


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the object."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


class StrictJSONParser(JSONParser):
    """JSON with exact decimals: ``12.30`` arrives as ``Decimal('12.30')``, never a float.

    NaN and Infinity and repeated keys are refused instead of silently taken.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        try:
            text = raw.decode(encoding)
            return json.loads(
                text,
                parse_float=Decimal,
                parse_constant=_refuse_constant,
                object_pairs_hook=_refuse_duplicate_keys,
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(_("Malformed JSON: %(error)s") % {"error": exc}) from exc


class IdCursorPagination(CursorPagination):
    """Keyset pagination on the primary key: the cost of a page does not grow with the list."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class PrincipalRateThrottle(BaseThrottle):
    """A request budget per staff user or API client, counted in fixed windows.

    One pipelined INCR and EXPIRE per request (``tenancy.fastcache``), where DRF's sliding
    window reads and writes the whole request history. For a token request the middleware has
    already counted it, in the same round trip that found the token. Anonymous requests have
    DRF's own budget.
    """

    scope = "principal"

    def allow_request(self, request: Request, view: APIView) -> bool:
        principal = getattr(request, "principal", None)
        if principal is None:
            return True
        window = current_window(api_settings.DEFAULT_THROTTLE_RATES[self.scope])  # type: ignore[arg-type]
        count = getattr(request._request, "counted_requests", None)
        if count is None:
            counter = window.counter(self.scope, f"{principal.kind}:{principal.id}")
            count = fastcache.count_in_window(counter, window.seconds + 1)
        self.wait_seconds = window.ends_in
        return count <= window.allowed

    def wait(self) -> float | None:
        return getattr(self, "wait_seconds", None)
