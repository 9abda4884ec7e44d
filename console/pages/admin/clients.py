"""API client pages: the list, a client with its grants, issuing a client, rotating its token
and revoking it. A token is shown once, on the page that answers the form that made it: it is
stored nowhere but as a hash, and a second submission of that form (a reloaded result page)
does nothing and shows no token."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib import messages
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.access import page, scoped
from console.forms import Field, Form
from console.lists import Column, Listing, listing_response
from console.pages.admin._shared import actor, grant_fields, grant_from, grants_text
from console.pages.customers._common import (
    may,
    once_pending,
    once_token,
    once_used,
    require_on,
    validated,
)
from tenancy import services
from tenancy.api import ApiClientSerializer
from tenancy.models import ApiClient, RoleGrant


def clients_queryset(request: HttpRequest) -> QuerySet:
    grants = RoleGrant.objects.select_related("site").order_by("role", "site_id")
    return scoped(request, ApiClient.objects.prefetch_related(Prefetch("grants", queryset=grants)))


class ClientFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter(
        label=_("Active"),
        widget=forms.Select(choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))]),
    )

    class Meta:
        model = ApiClient
        fields: list[str] = []


def _client_url(client: ApiClient) -> str:
    return reverse("console:api-client", args=[client.pk])


COLUMNS = [
    Column("name", _("Name"), link=_client_url),
    Column("key_prefix", _("Token starts with")),
    Column("roles", _("Roles"), value=lambda client: grants_text(client.grants.all())),
    Column("is_active", _("Active")),
    Column("created_at", _("Created"), sort="id"),
    Column("last_used_at", _("Last used")),
    Column("revoked_at", _("Revoked")),
]


@page("api_clients")
def client_list(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        clients_queryset(request),
        columns=COLUMNS,
        filterset=ClientFilter,
        export_name="api-clients",
    )
    return listing_response(
        request,
        "console/admin/clients.html",
        {"listing": listing, "can_add": may(request, "api_clients", "add", None)},
    )


def _client(request: HttpRequest, client_id: int) -> ApiClient:
    return get_object_or_404(clients_queryset(request), pk=client_id)


@page("api_clients")
def client_page(request: HttpRequest, client_id: int) -> HttpResponse:
    client = _client(request, client_id)
    return render(
        request,
        "console/admin/client.html",
        {
            "client": client,
            "grants": list(client.grants.all()),
            "can_rotate": client.is_active and may(request, "api_clients", "rotate", None),
            "can_revoke": client.is_active and may(request, "api_clients", "delete", None),
        },
    )


def _token_page(request: HttpRequest, client: ApiClient, token: str) -> HttpResponse:
    response = render(request, "console/admin/token.html", {"client": client, "token": token})
    response["Cache-Control"] = "no-store"
    return response


def _already_done(request: HttpRequest, client: ApiClient | None) -> HttpResponse:
    """A form that issued a token came again (a reload): nothing is done, no token shown."""
    messages.warning(
        request,
        gettext("That form was already sent: its token was shown once and is not shown again."),
    )
    return redirect(_client_url(client) if client else reverse("console:api-clients"))


@page("api_clients", "add")
def client_new(request: HttpRequest) -> HttpResponseBase:
    require_on(request, "api_clients", "add", None)
    fields = [
        Field("once", "", kind="hidden"),
        Field(
            "name", _("Name"), required=True, autofocus=True, help=_("E.g. the bank or gateway.")
        ),
        *grant_fields(request),
    ]
    form = Form(fields, request.POST or None, initial={"once": once_token(request)})
    if form.submitted:
        if not once_pending(request):
            return _already_done(request, None)
        values = form.cleaned()
        with form.attempt():
            grant_from(request, form)
        grant_ok = form.ok
        with form.attempt():
            grant = {"role": values.get("role", ""), "site": values.get("site")}
            data = {"name": values.get("name", ""), "grants": [grant] if grant_ok else []}
            client_data = validated(ApiClientSerializer, request, data)
        if form.ok:
            with form.attempt():
                client, token = services.issue_api_client(actor(request), **client_data)
        if form.ok:
            once_used(request)
            return _token_page(request, client, token)
    return render(
        request,
        "console/customers/form.html",
        {
            "form": form,
            "title": _("New API client"),
            "cancel_url": reverse("console:api-clients"),
            "submit_label": _("Create and show the token"),
        },
        status=200 if form.ok else 400,
    )


@page("api_clients", "rotate")
def client_rotate(request: HttpRequest, client_id: int) -> HttpResponseBase:
    client = _client(request, client_id)
    require_on(request, "api_clients", "rotate", None)
    if request.method == "POST":
        if not once_pending(request):
            return _already_done(request, client)
        form = Form([])
        with form.attempt():
            token = services.rotate_api_client_token(actor(request), client)
        if form.ok:
            once_used(request)
            return _token_page(request, client, token)
        messages.error(request, " ".join(form.non_field_errors))
        return redirect(_client_url(client))
    return render(
        request,
        "console/confirm.html",
        {
            "title": gettext("Rotate the token of %(name)s") % {"name": client.name},
            "consequences": [
                gettext("A new token is made and shown once."),
                gettext(
                    "The current token stops working at once: the integration fails until "
                    "it is given the new one."
                ),
            ],
            "form": Form([Field("once", "", kind="hidden")], initial={"once": once_token(request)}),
            "action_url": request.path,
            "cancel_url": _client_url(client),
            "confirm_label": gettext("Rotate the token"),
        },
    )


@page("api_clients", "delete")
def client_revoke(request: HttpRequest, client_id: int) -> HttpResponseBase:
    client = _client(request, client_id)
    require_on(request, "api_clients", "delete", None)
    if request.method == "POST":
        services.revoke_api_client(actor(request), client)
        messages.success(request, gettext("%(name)s was revoked.") % {"name": client.name})
        return redirect(_client_url(client))
    return render(
        request,
        "console/confirm.html",
        {
            "title": gettext("Revoke %(name)s") % {"name": client.name},
            "consequences": [
                gettext("Its token stops working at once, in every process."),
                gettext("This cannot be undone: a new client is needed to connect again."),
            ],
            "form": Form([]),
            "action_url": request.path,
            "cancel_url": _client_url(client),
            "confirm_label": gettext("Revoke"),
        },
    )
