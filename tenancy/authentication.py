"""DRF authentication on top of ``TenantMiddleware``, which has already found the principal."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from tenancy.models import ActorKind


class ApiClientTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` (or ``Bearer``) for integrations."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        django_request = request._request
        if getattr(django_request, "api_token_rejected", False):
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API token."))
        principal = getattr(django_request, "principal", None)
        if principal is None or principal.kind != ActorKind.API_CLIENT:
            return None
        return (principal.api_client, principal)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class StaffSessionAuthentication(SessionAuthentication):
    """The console's session login, with Django's CSRF check on unsafe methods."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        django_request = request._request
        principal = getattr(django_request, "principal", None)
        if principal is None or principal.kind != ActorKind.STAFF:
            return None
        self.enforce_csrf(request)
        return (principal.user, principal)
