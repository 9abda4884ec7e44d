"""REST endpoints for customers, accounts, premises and contacts."""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.fields import get_error_detail
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from customers import services
from customers.identifiers import (
    normalise_identity_number,
    normalise_mobile,
    validate_account_number,
)
from customers.models import Account, Contact, Customer, Premise
from tenancy import fastcache
from tenancy.api_base import (
    CreateReadUpdateTenantViewSet,
    CrudTenantViewSet,
    StrictCharField,
    TenantModelSerializer,
)
from tenancy.api_plumbing import StrictFilterSet
from tenancy.fields import search_hash
from tenancy.permissions import allowed_roles
from tenancy.principal import Principal
from tenancy.scoping import TenantQuerySet
from tenancy.throttling import current_window

# --- customers --------------------------------------------------------------------------------


class CustomerSerializer(TenantModelSerializer):
    id_number = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=18,
        help_text=_("Identity card number (person) or unified social credit code (organisation)."),
    )
    id_number_masked = serializers.CharField(read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "site", "kind", "name", "id_number", "id_number_masked", "created_at"]
        read_only_fields = ["id", "created_at"]


class CustomerFilter(StrictFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    id_number = django_filters.CharFilter(method="filter_id_number", label=_("identity number"))

    class Meta:
        model = Customer
        fields = ["site", "kind", "name", "id_number"]

    def filter_id_number(self, queryset: TenantQuerySet, name: str, value: str) -> TenantQuerySet:
        normalised = normalise_identity_number(value)
        return search_by_pii(self.request, queryset, "customers", "id_number", normalised)


def search_by_pii(
    request: Any, queryset: TenantQuerySet, resource: str, field: str, value: str
) -> TenantQuerySet:
    """Records whose identity or mobile number is ``value``. Refused (403) to roles that may
    not see the number, throttled apart from every other request (429), limited to the sites
    where the caller may see it, and audited."""
    principal: Principal = request.principal
    scope = principal.site_scope(allowed_roles(resource, "search_pii"))
    if not scope.allows_any:
        raise exceptions.PermissionDenied(
            _("Searching by %(field)s needs a role that may see it.") % {"field": field}
        )
    window = current_window(str(api_settings.DEFAULT_THROTTLE_RATES["pii_search"]))
    counter = window.counter("pii_search", f"{principal.kind}:{principal.id}")
    if fastcache.count_in_window(counter, window.seconds + 1) > window.allowed:
        raise exceptions.Throttled(
            wait=window.ends_in,
            detail=str(_("Too many searches by identity or mobile number; try again later.")),
        )
    hashed = search_hash(value)
    lookup = {"id_number_hash": hashed} if field == "id_number" else {"value_hash": hashed}
    found = queryset.for_sites(scope.site_ids_or_none).filter(**lookup)
    services.record_pii_search(principal, field, value, found)
    return found


RevealedPii = inline_serializer(
    "RevealedPersonalData",
    {
        "id": serializers.IntegerField(),
        "id_number": serializers.CharField(),
        "contacts": inline_serializer(
            "RevealedContact",
            {
                "id": serializers.IntegerField(),
                "kind": serializers.CharField(),
                "value": serializers.CharField(),
            },
            many=True,
        ),
    },
)


class CustomerViewSet(CreateReadUpdateTenantViewSet):
    """Persons and organisations; identity numbers are shown masked unless revealed."""

    permission_resource = "customers"
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    create_service = services.register_customer
    update_service = services.update_customer

    @extend_schema(request=None, responses=RevealedPii)
    @action(detail=True, methods=["post"], permission_action="reveal")
    def reveal(self, request: Request, pk: str | None = None) -> Response:
        """The unmasked identity number and contact values. Every call is in the audit trail."""
        return Response(services.reveal_customer_pii(self.principal, self.get_object()))


# --- premises ---------------------------------------------------------------------------------


class PremiseSerializer(TenantModelSerializer):
    class Meta:
        model = Premise
        fields = [
            "id",
            "site",
            "transformer_area",
            "address",
            "building",
            "unit",
            "room",
            "floor_area",
        ]


class PremiseViewSet(CrudTenantViewSet):
    """Addresses supplied, with building, unit and room; a premise with accounts stays."""

    permission_resource = "premises"
    queryset = Premise.objects.all()
    serializer_class = PremiseSerializer
    filterset_fields = ["site", "transformer_area"]
    create_service = services.create_premise
    update_service = services.update_premise
    delete_service = services.delete_premise


# --- accounts ---------------------------------------------------------------------------------


class AccountSerializer(TenantModelSerializer):
    number = StrictCharField(
        required=False,
        max_length=20,
        validators=[validate_account_number],
        help_text=_("Digits with a Luhn check digit; left out, the next number is given."),
    )
    # get_fields below changes only what may be written: every account shows the same fields.
    fixed_representation = True

    class Meta:
        model = Account
        fields = [
            "id",
            "number",
            "site",
            "customer",
            "premise",
            "utility",
            "payment_mode",
            "customer_class",
            "status",
            "opened_on",
            "closed_on",
            "household_size",
            "minimum_living_support",
            "contracted_capacity_kva",
        ]
        read_only_fields = ["id", "site", "closed_on"]
        extra_kwargs = {"opened_on": {"required": False}}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is None:
            fields["status"].read_only = True
        else:
            fields["number"].read_only = True
            fields["customer"].read_only = True
        return fields


class AccountViewSet(CreateReadUpdateTenantViewSet):
    """户号: looked up by account number. Accounts are closed, never deleted."""

    permission_resource = "accounts"
    queryset = Account.objects.all()
    serializer_class = AccountSerializer
    lookup_field = "number"
    lookup_value_regex = r"[^/]+"
    prepared_detail_lookup = True  # the hottest integration call: see TenantViewSet.get_object
    filterset_fields = [
        "site",
        "customer",
        "premise",
        "status",
        "payment_mode",
        "customer_class",
        "utility",
    ]
    create_service = services.open_account
    update_service = services.update_account

    def get_object(self) -> Account:
        """A mistyped number (wrong check digit) is a 400 that says so, not a 404."""
        try:
            validate_account_number(self.kwargs[self.lookup_field])
        except ValidationError as exc:
            raise exceptions.ValidationError({"number": get_error_detail(exc)}) from exc
        return super().get_object()


# --- contacts ---------------------------------------------------------------------------------


class ContactSerializer(TenantModelSerializer):
    value = StrictCharField(
        write_only=True,
        max_length=254,
        help_text=_("A mainland mobile number (+86) or an e-mail address."),
    )
    value_masked = serializers.CharField(read_only=True)

    class Meta:
        model = Contact
        fields = [
            "id",
            "customer",
            "kind",
            "value",
            "value_masked",
            "source",
            "last_confirmed_at",
            "sms_consent",
            "is_primary",
            "created_at",
        ]
        read_only_fields = ["id", "last_confirmed_at", "created_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:
            fields["value"].required = False
        return fields


class ContactFilter(StrictFilterSet):
    mobile = django_filters.CharFilter(method="filter_mobile", label=_("mobile number"))

    class Meta:
        model = Contact
        fields = ["customer", "kind", "source", "sms_consent", "mobile"]

    def filter_mobile(self, queryset: TenantQuerySet, name: str, value: str) -> TenantQuerySet:
        try:
            normalised = normalise_mobile(value)
        except ValidationError as exc:
            raise exceptions.ValidationError({"mobile": get_error_detail(exc)}) from exc
        return search_by_pii(self.request, queryset, "contacts", "mobile", normalised)


class ContactViewSet(CrudTenantViewSet):
    """How to reach a customer: where each number came from and when it was last confirmed."""

    permission_resource = "contacts"
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    create_service = services.add_contact
    update_service = services.update_contact
    delete_service = services.remove_contact

    @extend_schema(request=None, responses=ContactSerializer)
    @action(detail=True, methods=["post"], permission_action="confirm")
    def confirm(self, request: Request, pk: str | None = None) -> Response:
        """Record that the customer has just confirmed this contact is still theirs."""
        contact = services.confirm_contact(self.principal, self.get_object())
        return Response(self.get_serializer(contact).data)
