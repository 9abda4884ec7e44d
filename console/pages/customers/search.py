"""Finding customers and accounts: by account number, customer name, mobile number or meter
serial. Personal data in the results is masked; a role that may reveal it asks for it row by
row, and every reveal and every search by mobile number is in the audit trail."""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

from console.access import SITES, can, page, principal_of, scoped
from console.lists import Column, Listing, listing_response
from customers.api import search_by_pii
from customers.identifiers import normalise_mobile
from customers.models import Account, AccountStatus, Contact, Customer
from customers.services import reveal_customer_pii
from metering.models import Meter


class MobileField(forms.CharField):
    """A mainland mobile number, normalised (+86 and 11 digits) or refused with the reason."""

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        return normalise_mobile(value) if value else value


class MobileFilter(django_filters.CharFilter):
    field_class = MobileField


class AccountSearch(django_filters.FilterSet):
    number = django_filters.CharFilter(label=_("Account number"), method="filter_number")
    name = django_filters.CharFilter(
        label=_("Customer name"), field_name="customer__name", lookup_expr="icontains"
    )
    mobile = MobileFilter(label=_("Mobile phone"), method="filter_mobile")
    serial = django_filters.CharFilter(label=_("Meter serial"), method="filter_serial")
    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)
    status = django_filters.ChoiceFilter(label=_("Status"), choices=AccountStatus.choices)

    class Meta:
        model = Account
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.request
        assert request is not None  # Listing passes it
        if not can(request, "contacts", "search_pii"):
            del self.form.fields["mobile"]
        for name in ("number", "mobile", "serial"):
            if name in self.form.fields:
                self.form.fields[name].widget = forms.TextInput(
                    attrs={"type": "search", "size": 14, "autocomplete": "off"}
                )

    def filter_number(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """The number as typed, or the accounts whose number starts with it (the counter types
        the first digits from a bill)."""
        return queryset.filter(number__startswith=value.strip())

    def filter_serial(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        meters = Meter.objects.filter(serial_number=value.strip(), account__isnull=False)
        return queryset.filter(pk__in=meters.values("account_id"))

    def filter_mobile(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Through the API's own search by mobile number: refused to roles that may not see
        it, throttled, limited to their sites, and audited."""
        contacts = search_by_pii(self.request, Contact.objects.all(), "contacts", "mobile", value)
        return queryset.filter(customer__in=contacts.values("customer_id"))


def account_url(account: Account) -> str:
    return reverse("console:account", args=[account.pk])


def customer_url(customer: Customer) -> str:
    return reverse("console:customer", args=[customer.pk])


COLUMNS = [
    Column("number", _("Account number"), sort="number"),
    Column("customer.name", _("Customer")),
    Column("pii", _("Identity and contacts"), value=lambda account: ""),
    Column("premise", _("Premise")),
    Column("site", _("Site")),
    Column("get_status_display", _("Status")),
]
EXPORT_COLUMNS = [
    Column("number", _("Account number")),
    Column("customer.name", _("Customer")),
    Column("customer.id_number_masked", _("Identity number (masked)")),
    Column("premise", _("Premise")),
    Column("site", _("Site")),
    Column("get_utility_display", _("Utility")),
    Column("get_payment_mode_display", _("Payment mode")),
    Column("get_status_display", _("Status")),
]


def accounts_found(request: HttpRequest) -> QuerySet:
    return (
        scoped(request, Account.objects.all())
        .select_related("customer", "premise", "site")
        .prefetch_related(
            Prefetch("customer__contacts", queryset=Contact.objects.order_by("-is_primary", "id"))
        )
    )


@page("customers")
def customer_search(request: HttpRequest) -> HttpResponseBase:
    if "mobile" in request.GET and not can(request, "contacts", "search_pii"):
        raise PermissionDenied
    exporting = request.GET.get("export") == "csv"
    try:
        listing = Listing(
            request,
            accounts_found(request),
            columns=EXPORT_COLUMNS if exporting else COLUMNS,
            filterset=AccountSearch,
            default_sort="number",
            export_name="accounts",
        )
    except exceptions.PermissionDenied as exc:
        raise PermissionDenied from exc
    except exceptions.Throttled as exc:
        return render(
            request,
            "console/customers/search.html",
            {"throttled": str(exc.detail), "can_reveal": False},
            status=429,
        )
    return listing_response(
        request,
        "console/customers/search.html",
        {
            "listing": listing,
            "can_reveal": can(request, "customers", "reveal"),
            "can_add": can(request, "customers", "add"),
        },
    )


_FRAGMENT = re.compile(r"^pii-[0-9]{1,20}$")


@page("customers", "reveal")
def customer_reveal(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The unmasked identity number and contacts of one customer (POST only: every reveal is
    recorded). An htmx request gets the fragment that replaces the masked one."""
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    customer = get_object_or_404(scoped(request, Customer.objects.all()), pk=customer_id)
    principal = principal_of(request)
    assert principal is not None  # @page
    revealed = reveal_customer_pii(principal, customer)
    fragment = request.POST.get("fragment", "")
    context = {
        "customer": customer,
        "revealed": revealed,
        "fragment_id": fragment if _FRAGMENT.match(fragment) else f"pii-{customer.pk}",
    }
    template = "console/customers/_pii.html" if request.htmx else "console/customers/revealed.html"  # type: ignore[attr-defined]
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    return response
