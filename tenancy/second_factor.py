"""A second factor for staff who handle money (django-otp).

Staff who may approve or correct money (``permissions.MONEY_ACTIONS``) and tenant
administrators sign in with a one-time code from an authenticator app (TOTP, RFC 6238) after
their password, when their tenant requires it (``Tenant.require_second_factor``, on by default
in production). The first time, they enrol: the page shows a QR code (and the secret as text),
they confirm with a code from the app and get ten recovery codes, shown once, each good for one
sign-in without the phone. Until the second step is done, the session reaches nothing but the
sign-in pages: console pages send it to the second step, session API calls answer 403 with
``second_factor_required``. API clients (tokens) are machines and are not affected.

An administrator resets a member of staff's second factor (a lost phone): they enrol again at
their next sign-in. Enrolment, recovery codes used and resets are in the audit trail.
"""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import segno
from django import forms
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.audit import AuditAction, record_audit
from tenancy.permissions import second_factor_roles
from tenancy.principal import Principal, staff_roles

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenancy.models import User

RECOVERY_CODES = 10
RECOVERY_CODE_DIGITS = 8
# Paths a session waiting for its second step may reach.
OPEN_PATHS = ("/login/", "/logout/", "/two-factor/", "/i18n/", "/static/", "/healthz")


def needs_second_factor(user: User) -> bool:
    """Whether this member of staff signs in with a second factor."""
    tenant = user.tenant
    if tenant is None or not tenant.require_second_factor:
        return False
    return bool(staff_roles(user) & second_factor_roles())


def confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


class SecondFactorMiddleware:
    """Holds a signed-in session at the second step until it is done (after django-otp's
    ``OTPMiddleware``, which tells whether the session is verified)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and getattr(user, "tenant_id", None) is not None
            and not request.path.startswith(OPEN_PATHS)
            and not request.META.get("HTTP_AUTHORIZATION")  # an API client's token
            and not user.is_verified()
            and needs_second_factor(user)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "error": {
                            "code": "second_factor_required",
                            "message": _("Sign in with your second factor first."),
                            "fields": {},
                        }
                    },
                    status=403,
                )
            return redirect_to_login(request.get_full_path(), reverse("two-factor"))
        return self.get_response(request)


class CodeForm(forms.Form):
    code = forms.CharField(
        label=pgettext_lazy("one-time code", "Code"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def cleaned_code(self) -> str:
        return "".join(self.cleaned_data["code"].split()).lower()


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("console:home")


def _secret(device: TOTPDevice) -> str:
    """The app's key as an authenticator app takes it typed in: base32, without padding."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def _otpauth_uri(user: User, device: TOTPDevice) -> str:
    secret = _secret(device)
    issuer = quote(user.tenant.name if user.tenant else "BARS")
    return (
        f"otpauth://totp/{issuer}:{quote(user.username)}?secret={secret}&issuer={issuer}"
        f"&digits={device.digits}&period={device.step}"
    )


def two_factor(request: HttpRequest) -> HttpResponse:
    """The second step: enrol (first time) or enter a code from the app or a recovery code."""
    user: Any = request.user  # django-otp adds is_verified()
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if user.is_verified() or not needs_second_factor(user):
        return redirect(_next(request))
    device = confirmed_device(user)
    if device is None:
        return _enrol(request, user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_code()
        # Six digits come from the app; recovery codes have eight.
        recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
        checked = recovery if len(code) == RECOVERY_CODE_DIGITS and recovery else device
        if _allowed(checked, form):
            if checked.verify_token(code):
                otp_login(request, checked)
                if checked is recovery:
                    record_audit(
                        Principal.for_user(user),
                        AuditAction.SECOND_FACTOR_RECOVERY_USED,
                        user,
                        after={"recovery_codes_left": recovery.token_set.count()},
                    )
                return redirect(_next(request))
            form.add_error("code", _("The code is not right, or has been used."))
    return render(request, "registration/two_factor.html", {"form": form, "next": _next(request)})


def _allowed(device: TOTPDevice | StaticDevice, form: CodeForm) -> bool:
    """django-otp doubles the wait after each wrong code (1 s, 2 s, 4 s…): say so."""
    allowed, _detail = device.verify_is_allowed()
    if not allowed:
        form.add_error("code", _("Too many wrong codes: wait a few seconds and try again."))
    return bool(allowed)


def _enrol(request: HttpRequest, user: User) -> HttpResponse:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _allowed(device, form):
        if device.verify_token(form.cleaned_code()):
            codes = _confirm(user, device)
            otp_login(request, device)
            return render(
                request,
                "registration/two_factor.html",
                {"recovery_codes": codes, "next": _next(request)},
            )
        form.add_error("code", _("The code is not right: check the time on the phone."))
    uri = _otpauth_uri(user, device)
    return render(
        request,
        "registration/two_factor.html",
        {
            "enrol": True,
            "form": form,
            "qr_svg": segno.make(uri, error="m").svg_inline(scale=4),
            "secret": _secret(device),
            "next": _next(request),
        },
    )


def _confirm(user: User, device: TOTPDevice) -> list[str]:
    """The app is confirmed: keep its device, and make ten new recovery codes."""
    codes = [
        f"{secrets.randbelow(10**RECOVERY_CODE_DIGITS):0{RECOVERY_CODE_DIGITS}d}"
        for _ in range(RECOVERY_CODES)
    ]
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        StaticDevice.objects.filter(user=user).delete()
        recovery = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
        StaticToken.objects.bulk_create(StaticToken(device=recovery, token=c) for c in codes)
        record_audit(
            Principal.for_user(user),
            AuditAction.SECOND_FACTOR_ENROLLED,
            user,
            after={"recovery_codes": RECOVERY_CODES},
        )
    return codes


def reset_second_factor(actor: Principal, user: Any) -> int:
    """Forget a member of staff's app and recovery codes (a lost phone); they enrol again at
    their next sign-in. Returns the devices removed."""
    with transaction.atomic():
        apps, recovery = (
            TOTPDevice.objects.filter(user=user),
            StaticDevice.objects.filter(user=user),
        )
        removed = apps.count() + recovery.count()
        apps.delete()
        recovery.delete()
        record_audit(actor, AuditAction.SECOND_FACTOR_RESET, user, after={"devices": removed})
    return removed
