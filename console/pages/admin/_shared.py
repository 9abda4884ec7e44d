"""What the administration pages share: grants as people read them, the role and site fields
of a grant, and the actor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.access import permitted_sites, principal_of
from console.forms import Field, Form, api_request
from tenancy.api import GrantSerializer
from tenancy.models import RoleGrant
from tenancy.principal import Principal
from tenancy.roles import Role
from tenancy.services import GrantSpec


def actor(request: HttpRequest) -> Principal:
    principal = principal_of(request)
    assert principal is not None  # @page let the request in
    return principal


def grant_label(grant: RoleGrant | GrantSpec) -> str:
    site = grant.site
    where = str(site) if site is not None else gettext("all sites")
    return f"{Role(grant.role).label} ({where})"


def grants_text(grants: Iterable[RoleGrant]) -> str:
    return "; ".join(grant_label(grant) for grant in grants) or "—"


def grant_fields(request: HttpRequest) -> list[Field]:
    sites = permitted_sites(request)
    return [
        Field("role", _("Role"), kind="select", required=True, choices=Role.choices),
        Field(
            "site",
            _("Site"),
            kind="select",
            choices=[(site.pk, str(site)) for site in sites],
            help=_("Leave empty for every site."),
        ),
    ]


def grant_from(request: HttpRequest, form: Form) -> GrantSpec:
    """The grant of the form's role and site, validated by the API's grant serializer."""
    values = form.cleaned()
    data: dict[str, Any] = {"role": values.get("role", ""), "site": values.get("site")}
    serializer = GrantSerializer(data=data, context={"request": api_request(request)})
    serializer.is_valid(raise_exception=True)
    spec: GrantSpec = serializer.validated_data
    return spec


def specs_of(grants: Iterable[RoleGrant]) -> list[GrantSpec]:
    return [GrantSpec(grant.role, grant.site) for grant in grants]
