"""Staff pages: the list, a member of staff with their role grants (one added or removed at a
time), creating staff, and the dangerous actions (deactivate, unlock a login lockout, reset the
second factor), each confirmed first. Staff belong to the whole tenant, so changing them needs
the administrator's role for all sites, as in the API."""

from __future__ import annotations

from typing import Any

import django_filters
from axes.models import AccessAttempt
from django import forms
from django.contrib import messages
from django.db.models import Prefetch, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.access import page, scoped
from console.forms import Field, Form
from console.lists import Column, Listing, listing_response
from console.pages.admin._shared import actor, grant_fields, grant_from, grants_text, specs_of
from console.pages.customers._common import may, require_on, validated
from tenancy import second_factor, services
from tenancy.api import StaffSerializer
from tenancy.models import RoleGrant, User
from tenancy.roles import Role


def staff_queryset(request: HttpRequest) -> QuerySet:
    grants = RoleGrant.objects.select_related("site").order_by("role", "site_id")
    return scoped(request, User.tenant_staff.prefetch_related(Prefetch("grants", queryset=grants)))


class StaffFilter(django_filters.FilterSet):
    username = django_filters.CharFilter(
        label=_("User name starts with"), field_name="username", lookup_expr="istartswith"
    )
    role = django_filters.ChoiceFilter(label=_("Role"), choices=Role.choices, method="with_role")
    is_active = django_filters.BooleanFilter(
        label=_("Active"),
        widget=forms.Select(choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))]),
    )

    class Meta:
        model = User
        fields: list[str] = []

    def with_role(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        holders = RoleGrant.objects.filter(role=value, user__isnull=False).values("user_id")
        return queryset.filter(pk__in=holders)


def _staff_url(user: User) -> str:
    return reverse("console:staff-member", args=[user.pk])


COLUMNS = [
    Column("username", _("User name"), sort="username", link=_staff_url),
    Column("display_name", _("Display name")),
    Column("email", _("E-mail")),
    Column("roles", _("Roles"), value=lambda user: grants_text(user.grants.all())),
    Column("is_active", _("Active")),
    Column("last_login", _("Last sign-in")),
]


@page("staff")
def staff_list(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        staff_queryset(request),
        columns=COLUMNS,
        filterset=StaffFilter,
        default_sort="username",
        export_name="staff",
    )
    return listing_response(
        request,
        "console/admin/staff_list.html",
        {"listing": listing, "can_add": may(request, "staff", "add", None)},
    )


# --- one member of staff ----------------------------------------------------------------------


def _lockout_failures(user: User) -> int:
    attempts = AccessAttempt.objects.filter(username=user.username)
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


def _member_page(
    request: HttpRequest,
    member: User,
    *,
    grant_form: Form | None = None,
    profile_form: Form | None = None,
    grant_errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    may_change = may(request, "staff", "change", None)
    profile = {"display_name": member.display_name, "email": member.email}
    return render(
        request,
        "console/admin/staff_member.html",
        {
            "member": member,
            "grants": list(member.grants.all()),
            "failures": _lockout_failures(member),
            "enrolled": TOTPDevice.objects.filter(user=member, confirmed=True).exists(),
            "can_change": may_change,
            "can_delete": may(request, "staff", "delete", None),
            "can_unlock": may(request, "staff", "unlock", None),
            "can_reset": may(request, "staff", "reset_second_factor", None),
            "grant_form": grant_form or Form(grant_fields(request)),
            "profile_form": profile_form or Form(_profile_fields(), initial=profile),
            "grant_errors": grant_errors or [],
        },
        status=status,
    )


def _profile_fields() -> list[Field]:
    return [Field("display_name", _("Display name")), Field("email", _("E-mail"))]


def _member(request: HttpRequest, user_id: int) -> User:
    return get_object_or_404(staff_queryset(request), pk=user_id)


@page("staff")
def staff_member(request: HttpRequest, user_id: int) -> HttpResponse:
    return _member_page(request, _member(request, user_id))


@page("staff")
def staff_profile(request: HttpRequest, user_id: int) -> HttpResponseBase:
    """Change the display name and e-mail (POST)."""
    member = _member(request, user_id)
    if request.method != "POST":
        return redirect(_staff_url(member))
    require_on(request, "staff", "change", None)
    form = Form(_profile_fields(), request.POST)
    with form.attempt():
        services.update_staff(
            actor(request),
            member,
            {"display_name": form.value("display_name"), "email": form.value("email")},
        )
    if not form.ok:
        return _member_page(request, member, profile_form=form, status=400)
    messages.success(request, gettext("Saved."))
    return redirect(_staff_url(member))


@page("staff")
def staff_grant_add(request: HttpRequest, user_id: int) -> HttpResponseBase:
    """Add one role, for one site or all (POST); the service replaces the grants as a whole."""
    member = _member(request, user_id)
    if request.method != "POST":
        return redirect(_staff_url(member))
    require_on(request, "staff", "change", None)
    form = Form(grant_fields(request), request.POST)
    with form.attempt():
        grant = grant_from(request, form)
        services.update_staff(
            actor(request), member, {"grants": [*specs_of(member.grants.all()), grant]}
        )
    if not form.ok:
        return _member_page(request, member, grant_form=form, status=400)
    messages.success(request, gettext("The role was granted."))
    return redirect(_staff_url(member))


@page("staff")
def staff_grant_remove(request: HttpRequest, user_id: int, grant_id: int) -> HttpResponseBase:
    """Take one role grant away (POST); the tenant keeps an administrator for all sites."""
    member = _member(request, user_id)
    if request.method != "POST":
        return redirect(_staff_url(member))
    require_on(request, "staff", "change", None)
    grants = list(member.grants.all())
    if grant_id not in {grant.pk for grant in grants}:
        return redirect(_staff_url(member))
    errors = Form([])
    with errors.attempt():
        kept = [grant for grant in grants if grant.pk != grant_id]
        services.update_staff(actor(request), member, {"grants": specs_of(kept)})
    if not errors.ok:
        return _member_page(request, member, grant_errors=errors.non_field_errors, status=400)
    messages.success(request, gettext("The role was taken away."))
    return redirect(_staff_url(member))


# --- creating staff ---------------------------------------------------------------------------


def _new_staff_fields(request: HttpRequest) -> list[Field]:
    return [
        Field("username", _("User name"), required=True, autofocus=True),
        Field("display_name", _("Display name")),
        Field("email", _("E-mail")),
        Field(
            "password",
            _("Initial password"),
            kind="password",
            required=True,
            help=_("Give it to the person privately; they can change it after signing in."),
        ),
        *grant_fields(request),
    ]


@page("staff", "add")
def staff_new(request: HttpRequest) -> HttpResponseBase:
    require_on(request, "staff", "add", None)
    form = Form(_new_staff_fields(request), request.POST or None)
    if form.submitted:
        values = form.cleaned()
        grant_data = {"role": values.get("role", ""), "site": values.get("site")}
        with form.attempt():
            grant_from(request, form)
        grant_ok = form.ok  # else its errors are on the role and site fields already
        with form.attempt():
            data: dict[str, Any] = {
                key: values.get(key, "") for key in ("username", "display_name", "email")
            }
            data.update(
                password=values.get("password", ""), grants=[grant_data] if grant_ok else []
            )
            staff_data = validated(StaffSerializer, request, data)
        if form.ok:
            with form.attempt():
                member = services.create_staff(actor(request), **staff_data)
        if form.ok:
            messages.success(request, gettext("The member of staff was created."))
            return redirect(_staff_url(member))
        form.data = {key: value for key, value in request.POST.items() if key != "password"}
    return render(
        request,
        "console/customers/form.html",
        {
            "form": form,
            "title": _("New member of staff"),
            "cancel_url": reverse("console:staff"),
            "submit_label": _("Create"),
        },
        status=200 if form.ok else 400,
    )


# --- dangerous actions, confirmed -------------------------------------------------------------


def _confirm(
    request: HttpRequest, member: User, *, title: str, consequences: list[str], label: str
) -> HttpResponse:
    return render(
        request,
        "console/confirm.html",
        {
            "title": title,
            "consequences": consequences,
            "form": Form([]),
            "action_url": request.path,
            "cancel_url": _staff_url(member),
            "confirm_label": label,
        },
    )


@page("staff", "delete")
def staff_deactivate(request: HttpRequest, user_id: int) -> HttpResponseBase:
    member = _member(request, user_id)
    require_on(request, "staff", "delete", None)
    if request.method != "POST":
        return _confirm(
            request,
            member,
            title=gettext("Deactivate %(name)s") % {"name": member.label},
            consequences=[
                gettext("They can no longer sign in; their sessions stop at the next request."),
                gettext("Their name stays in the audit trail and on what they did."),
                gettext("The tenant must keep an active administrator for all sites."),
            ],
            label=gettext("Deactivate"),
        )
    form = Form([])
    with form.attempt():
        services.deactivate_staff(actor(request), member)
    if not form.ok:
        return _member_page(request, member, grant_errors=form.non_field_errors, status=400)
    messages.success(request, gettext("%(name)s was deactivated.") % {"name": member.label})
    return redirect(_staff_url(member))


@page("staff", "unlock")
def staff_unlock(request: HttpRequest, user_id: int) -> HttpResponseBase:
    member = _member(request, user_id)
    require_on(request, "staff", "unlock", None)
    if request.method != "POST":
        return _confirm(
            request,
            member,
            title=gettext("Unlock %(name)s") % {"name": member.label},
            consequences=[
                gettext("The failed sign-ins recorded for this user name are cleared: %(count)s.")
                % {"count": _lockout_failures(member)},
                gettext("They can try their password again at once."),
            ],
            label=gettext("Unlock"),
        )
    cleared = services.unlock_staff(actor(request), member)
    messages.success(
        request, gettext("Unlocked; %(count)s failed sign-ins cleared.") % {"count": cleared}
    )
    return redirect(_staff_url(member))


@page("staff", "reset_second_factor")
def staff_reset_second_factor(request: HttpRequest, user_id: int) -> HttpResponseBase:
    member = _member(request, user_id)
    require_on(request, "staff", "reset_second_factor", None)
    if request.method != "POST":
        return _confirm(
            request,
            member,
            title=gettext("Reset the second factor of %(name)s") % {"name": member.label},
            consequences=[
                gettext("Their authenticator app and recovery codes stop working."),
                gettext("At their next sign-in they set up a new app."),
                gettext("Do this only once you are sure who asked (a lost phone)."),
            ],
            label=gettext("Reset the second factor"),
        )
    second_factor.reset_second_factor(actor(request), member)
    messages.success(request, gettext("The second factor was reset."))
    return redirect(_staff_url(member))
