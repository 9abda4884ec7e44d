"""Request id and client address for logs and audit; the acting principal and its tenant.

``TenantMiddleware`` resolves who is calling, from an API token (``Authorization: Token …``
or ``Bearer …``) or the session, and sets the current tenant and its time zone for the whole
request, so scoped queries, audit events and rendered times all see the same tenant.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty
from rest_framework.settings import api_settings

from tenancy.context import (
    RequestMeta,
    reset_current_tenant,
    reset_request_meta,
    set_current_tenant,
    set_request_meta,
)
from tenancy.principal import Principal, principal_for_token
from tenancy.throttling import current_window

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_TOKEN_SCHEMES = {"token", "bearer"}


def client_ip(request: HttpRequest) -> str | None:
    proxies = getattr(settings, "AXES_IPWARE_PROXY_COUNT", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


class RequestMetaMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = set_request_meta(RequestMeta(request_id=request_id, ip=client_ip(request)))
        try:
            response = self.get_response(request)
        finally:
            reset_request_meta(token)
        response["X-Request-ID"] = request_id
        return response


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        principal = self.resolve_principal(request)
        request.principal = principal  # type: ignore[attr-defined]
        if principal is None or principal.tenant is None:
            return self.get_response(request)
        tenant_token = set_current_tenant(principal.tenant)
        timezone.activate(principal.tenant.zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
            reset_current_tenant(tenant_token)

    def resolve_principal(self, request: HttpRequest) -> Principal | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() in _TOKEN_SCHEMES:
                principal = None
                if token.strip():
                    window = current_window(api_settings.DEFAULT_THROTTLE_RATES["principal"])  # type: ignore[arg-type]
                    principal, count = principal_for_token(token.strip(), window)
                    request.counted_requests = count  # type: ignore[attr-defined]
                request.api_token_rejected = principal is None  # type: ignore[attr-defined]
                return principal
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.tenant_id is None:
            return None
        if not user.tenant.is_active:
            return None
        return Principal.for_user(user)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's message middleware, with each request's message storage made on first use.

    Django makes the storage on every request (a cookie signer and two backends: 15-20 µs),
    and API calls never use it. Here it is made when something adds, reads or iterates the
    messages; a storage never made was neither read nor added to, so it has nothing to store
    in the response, which is what Django's ``update`` would have found too.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
