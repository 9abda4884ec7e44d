"""The one error body of the API.

Every 4xx answers ``{"error": {"code": …, "message": …, "fields": {…}}}``: ``code`` is stable
for programs, ``message`` is for people (in the request's language), ``fields`` maps each bad
input field to its messages. A refusal that carries a figure a program needs (the tries left
before a recharge card locks) adds it beside them, from the exception's ``error_extra``.
Django's own exceptions (404, permission, model validation, protected deletes, integrity
errors, oversized bodies) are mapped to the same body.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.views import exception_handler

from tenancy.api_plumbing import Conflict, PayloadTooLarge


def _flatten_messages(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [msg for value in detail.values() for msg in _flatten_messages(value)]
    if isinstance(detail, list):
        return [msg for item in detail for msg in _flatten_messages(item)]
    return [str(detail)]


def _field_errors(detail: Any) -> dict[str, Any]:
    """DRF's nested error detail as plain strings, without the non-field bucket."""
    if not isinstance(detail, dict):
        return {}
    return json.loads(json.dumps({k: v for k, v in detail.items() if k != "non_field_errors"}))


def _first_code(detail: Any, fallback: str) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_code(value, fallback)
    if isinstance(detail, list) and detail:
        return _first_code(detail[0], fallback)
    return getattr(detail, "code", None) or fallback


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(get_error_detail(exc))
    if isinstance(exc, ProtectedError | RestrictedError):
        return Conflict(_("This object is still in use and cannot be deleted."), code="in_use")
    if isinstance(exc, IntegrityError):
        return Conflict(_("This change conflicts with existing data."), code="conflict")
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    return exc


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    extra: dict[str, Any] = getattr(exc, "error_extra", None) or {}
    exc = _as_api_exception(exc)
    response = exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(detail)
        non_field = detail.get("non_field_errors") if isinstance(detail, dict) else detail
        if non_field:
            message = _flatten_messages(non_field)[0]
        else:
            first_field = next(iter(fields))
            message = f"{first_field}: {_flatten_messages(fields[first_field])[0]}"
        response.data = error_body(_first_code(detail, "invalid"), message, fields)
        response.data["error"].update(
            (key, value) for key, value in extra.items() if key not in response.data["error"]
        )
    else:
        message = " ".join(_flatten_messages(detail))
        code = _first_code(detail, exc.default_code)
        response.data = error_body(code, message)
    return response


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    """The error body outside DRF (unknown API URLs, server errors)."""
    return JsonResponse(error_body(code, message), status=status_code)
