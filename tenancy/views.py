"""Staff login and logout pages (audited), and the health check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from tenancy.audit import AuditAction, record_audit
from tenancy.principal import Principal

if TYPE_CHECKING:
    from django.contrib.auth.forms import AuthenticationForm
    from django.contrib.auth.models import AnonymousUser

    from tenancy.models import User


def _audit_session(user: User | AnonymousUser | None, action: AuditAction) -> None:
    if user is not None and user.is_authenticated and user.tenant_id is not None:
        record_audit(Principal.for_user(user), action, user)


class StaffLoginView(auth_views.LoginView):
    """Username and password; repeated failures lock the user name (django-axes)."""

    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        _audit_session(form.get_user(), AuditAction.LOGIN)
        return response


class StaffLogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _audit_session(request.user, AuditAction.LOGOUT)
        return super().post(request, *args, **kwargs)


def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
