"""What the customer and administration pages share: permission on an object's site, the
tenant-wide writes, and running the API's serializer and a service from a console form."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework import serializers

from console.access import require, scope_for
from console.forms import Form, api_request


def may(request: HttpRequest, resource: str, action: str, site_id: int | None) -> bool:
    """Whether the person holds ``resource.action`` on the object's site (on every site for a
    tenant-wide object, ``site_id`` ``None``)."""
    scope = scope_for(request, resource, action)
    return scope.all_sites if site_id is None else scope.allows(site_id)


def require_on(request: HttpRequest, resource: str, action: str, site_id: int | None) -> None:
    """403 unless the person holds ``resource.action`` on the object's site (as the API's
    viewsets answer: writes to tenant-wide objects need the role for all sites)."""
    require(request, resource, action)
    if not may(request, resource, action, site_id):
        raise PermissionDenied


def validated(
    serializer_class: type[serializers.Serializer],
    request: HttpRequest,
    data: dict[str, Any],
    *,
    instance: Any = None,
    partial: bool = False,
) -> dict[str, Any]:
    """``data`` validated by the API's serializer (a DRF ``ValidationError`` lands on the form
    by field inside ``form.attempt()``)."""
    serializer = serializer_class(
        instance, data=data, partial=partial, context={"request": api_request(request)}
    )
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def submitted(form: Form, work: Callable[[], Any]) -> Any:
    """Run ``work`` for a posted form; its result, or ``None`` with the errors on the form."""
    result = None
    with form.attempt():
        result = work()
    return result if form.ok else None


def edit_payload(
    form: Form, *, keep_blank: Collection[str] = (), null_blank: Collection[str] = ()
) -> dict[str, Any]:
    """What an edit form sends the serializer: what was typed, a field left empty sent as ``""``
    (text that may be empty) or ``None`` (an optional number or date), the others left out."""
    values = form.cleaned()
    for spec in form.fields:
        if spec.name in values:
            continue
        if spec.name in keep_blank:
            values[spec.name] = ""
        elif spec.name in null_blank:
            values[spec.name] = None
    return values


# --- forms that must not be sent twice (a token issued, a token rotated) ---------------------

ONCE_KEY = "console_once"
ONCE_KEPT = 20


def once_token(request: HttpRequest) -> str:
    """A one-time value for a form whose second submission must do nothing (a reloaded result
    page that issued a token would issue another)."""
    pending: list[str] = request.session.get(ONCE_KEY, [])
    token = secrets.token_urlsafe(16)
    request.session[ONCE_KEY] = [*pending[-(ONCE_KEPT - 1) :], token]
    return token


def once_pending(request: HttpRequest) -> bool:
    return request.POST.get("once", "") in request.session.get(ONCE_KEY, [])


def once_used(request: HttpRequest) -> None:
    used = request.POST.get("once", "")
    request.session[ONCE_KEY] = [t for t in request.session.get(ONCE_KEY, []) if t != used]
