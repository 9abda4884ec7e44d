"""Registering and changing customers, premises, accounts and contacts: each form is validated
by the API's serializer and written by the same service the API calls, so a page cannot write
what the API would refuse. A wrong form comes back with status 400, each error beside its
field and everything typed still there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from console.access import page, principal_of, scoped, site_choices
from console.forms import Field, Form
from console.pages.customers._common import edit_payload, validated
from customers import services
from customers.api import (
    AccountSerializer,
    ContactSerializer,
    CustomerSerializer,
    PremiseSerializer,
)
from customers.models import (
    Account,
    AccountStatus,
    Contact,
    ContactKind,
    ContactSource,
    Customer,
    CustomerClass,
    CustomerKind,
    PaymentMode,
    Premise,
    Utility,
)
from tenancy.models import TransformerArea
from tenancy.principal import Principal

PREMISES_OFFERED = 300


def _actor(request: HttpRequest) -> Principal:
    principal = principal_of(request)
    assert principal is not None  # @page let the request in
    return principal


def _form_page(
    request: HttpRequest,
    form: Form,
    *,
    title: Promise | str,
    cancel_url: str,
    submit_label: Promise | str,
    intro: Promise | str = "",
) -> HttpResponse:
    return render(
        request,
        "console/customers/form.html",
        {
            "form": form,
            "title": title,
            "cancel_url": cancel_url,
            "submit_label": submit_label,
            "intro": intro,
        },
        status=200 if form.ok else 400,
    )


def _save(
    request: HttpRequest, form: Form, work: Callable[[], Any], done: Callable[[Any], str]
) -> HttpResponseBase | None:
    """Run ``work`` on a posted form; on success a message and a redirect to ``done(result)``,
    else ``None`` (the errors are on the form)."""
    if not form.submitted:
        return None
    result = None
    with form.attempt():
        result = work()
    if not form.ok:
        return None
    messages.success(request, gettext("Saved."))
    return redirect(done(result))


# --- customers --------------------------------------------------------------------------------


def _customer_fields(request: HttpRequest, *, new: bool) -> list[Field]:
    return [
        Field("site", _("Site"), kind="select", required=True, choices=site_choices(request)),
        Field("kind", _("Kind"), kind="select", required=True, choices=CustomerKind.choices),
        Field(
            "name", pgettext_lazy("person or organisation", "Name"), required=True, autofocus=True
        ),
        Field(
            "id_number",
            _("Identity card number or unified social credit code"),
            help=""
            if new
            else _("Leave empty to keep the number on record (it is not shown here)."),
            send_blank=False,
        ),
    ]


@page("customers", "add")
def customer_new(request: HttpRequest) -> HttpResponseBase:
    form = Form(_customer_fields(request, new=True), request.POST or None)
    done = _save(
        request,
        form,
        lambda: services.register_customer(
            _actor(request), **validated(CustomerSerializer, request, form.cleaned())
        ),
        lambda customer: reverse("console:customer", args=[customer.pk]),
    )
    return done or _form_page(
        request,
        form,
        title=_("Register a customer"),
        cancel_url=reverse("console:customer-search"),
        submit_label=_("Register"),
    )


@page("customers", "change")
def customer_edit(request: HttpRequest, customer_id: int) -> HttpResponseBase:
    customer = get_object_or_404(scoped(request, Customer.objects.all()), pk=customer_id)
    initial = {"site": customer.site_id, "kind": customer.kind, "name": customer.name}
    form = Form(_customer_fields(request, new=False), request.POST or None, initial=initial)

    def work() -> Customer:
        changes = validated(
            CustomerSerializer, request, form.cleaned(), instance=customer, partial=True
        )
        return services.update_customer(_actor(request), customer, changes)

    url = reverse("console:customer", args=[customer.pk])
    done = _save(request, form, work, lambda _customer: url)
    return done or _form_page(
        request,
        form,
        title=_("Edit the customer %(name)s") % {"name": customer.name},
        cancel_url=url,
        submit_label=_("Save"),
    )


# --- premises ---------------------------------------------------------------------------------


def _premise_fields(request: HttpRequest) -> list[Field]:
    areas = scoped(request, TransformerArea.objects.order_by("code"))
    return [
        Field("site", _("Site"), kind="select", required=True, choices=site_choices(request)),
        Field(
            "transformer_area",
            _("Transformer area"),
            kind="select",
            choices=[(area.pk, str(area)) for area in areas],
        ),
        Field("address", _("Address"), required=True, autofocus=True),
        Field("building", _("Building")),
        Field("unit", pgettext_lazy("part of a building", "Unit")),
        Field("room", _("Room")),
        Field("floor_area", _("Floor area (m²)"), kind="number", step="0.01"),
    ]


PREMISE_TEXT = frozenset({"building", "unit", "room"})
PREMISE_NULLABLE = frozenset({"transformer_area", "floor_area"})


@page("premises", "add")
def premise_new(request: HttpRequest) -> HttpResponseBase:
    """A new premise; coming from a customer's "open an account", back there with it chosen."""
    form = Form(_premise_fields(request), request.POST or None)
    then = request.GET.get("customer", "")

    def done(premise: Premise) -> str:
        if then.isdigit():
            return f"{reverse('console:account-new', args=[int(then)])}?premise={premise.pk}"
        return reverse("console:customer-search")

    response = _save(
        request,
        form,
        lambda: services.create_premise(
            _actor(request), **validated(PremiseSerializer, request, form.cleaned())
        ),
        done,
    )
    return response or _form_page(
        request,
        form,
        title=_("Add a premise"),
        cancel_url=reverse("console:customer-search"),
        submit_label=_("Add"),
    )


@page("premises", "change")
def premise_edit(request: HttpRequest, premise_id: int) -> HttpResponseBase:
    premise = get_object_or_404(scoped(request, Premise.objects.all()), pk=premise_id)
    initial = {
        "site": premise.site_id,
        "transformer_area": premise.transformer_area_id or "",
        "address": premise.address,
        "building": premise.building,
        "unit": premise.unit,
        "room": premise.room,
        "floor_area": premise.floor_area if premise.floor_area is not None else "",
    }
    form = Form(_premise_fields(request), request.POST or None, initial=initial)

    def work() -> Premise:
        payload = edit_payload(form, keep_blank=PREMISE_TEXT, null_blank=PREMISE_NULLABLE)
        changes = validated(PremiseSerializer, request, payload, instance=premise, partial=True)
        return services.update_premise(_actor(request), premise, changes)

    account = scoped(request, Account.objects.all()).filter(premise=premise).first()
    back = (
        reverse("console:account", args=[account.pk])
        if account
        else reverse("console:customer-search")
    )
    response = _save(request, form, work, lambda _premise: back)
    return response or _form_page(
        request, form, title=_("Edit the premise"), cancel_url=back, submit_label=_("Save")
    )


# --- accounts ---------------------------------------------------------------------------------


def _premise_choices(premises: QuerySet) -> list[tuple[int, str]]:
    return [(premise.pk, str(premise)) for premise in premises[:PREMISES_OFFERED]]


def _account_terms() -> list[Field]:
    return [
        Field("utility", _("Utility"), kind="select", required=True, choices=Utility.choices),
        Field(
            "payment_mode",
            _("Payment mode"),
            kind="select",
            required=True,
            choices=PaymentMode.choices,
        ),
        Field(
            "customer_class",
            _("Customer class"),
            kind="select",
            required=True,
            choices=CustomerClass.choices,
        ),
        Field("opened_on", _("Opened on"), kind="date"),
        Field("household_size", _("Household size"), kind="number", step="1"),
        Field("minimum_living_support", _("Minimum living support (低保)"), kind="checkbox"),
        Field(
            "contracted_capacity_kva",
            _("Contracted capacity (kVA)"),
            kind="number",
            step="0.1",
            help=_("For large users on a two-part tariff."),
        ),
    ]


@page("accounts", "add")
def account_new(request: HttpRequest, customer_id: int) -> HttpResponseBase:
    customer = get_object_or_404(scoped(request, Customer.objects.all()), pk=customer_id)
    premises = scoped(request, Premise.objects.filter(site=customer.site_id)).order_by("-id")
    fields = [
        Field(
            "premise",
            _("Premise"),
            kind="select",
            required=True,
            choices=_premise_choices(premises),
            help=_("The latest premises of the customer's site."),
        ),
        *_account_terms(),
        Field(
            "number",
            _("Account number"),
            help=_("Leave empty for the next number; an imported number needs its check digit."),
            send_blank=False,
        ),
    ]
    initial = {
        "premise": request.GET.get("premise", ""),
        "utility": Utility.ELECTRICITY,
        "household_size": 1,
    }
    form = Form(fields, request.POST or None, initial=initial)

    def work() -> Account:
        data = {**form.cleaned(), "customer": customer.pk}
        return services.open_account(_actor(request), **validated(AccountSerializer, request, data))

    response = _save(
        request, form, work, lambda account: reverse("console:account", args=[account.pk])
    )
    new_premise = f"{reverse('console:premise-new')}?customer={customer.pk}"
    return response or _form_page(
        request,
        form,
        title=_("Open an account for %(name)s") % {"name": customer.name},
        cancel_url=reverse("console:customer", args=[customer.pk]),
        submit_label=_("Open the account"),
        intro=new_premise,
    )


@page("accounts", "change")
def account_edit(request: HttpRequest, account_id: int) -> HttpResponseBase:
    account = get_object_or_404(scoped(request, Account.objects.all()), pk=account_id)
    premises = scoped(request, Premise.objects.filter(site=account.site_id)).order_by("-id")
    choices = _premise_choices(premises)
    if account.premise_id not in {pk for pk, _label in choices}:
        choices.insert(0, (account.premise_id, str(account.premise)))
    fields = [
        Field("premise", _("Premise"), kind="select", required=True, choices=choices),
        Field(
            "status",
            _("Status"),
            kind="select",
            required=True,
            choices=AccountStatus.choices,
            help=_("A closed account stays closed: open a new one instead."),
        ),
        *_account_terms(),
    ]
    initial = {
        name: getattr(account, name)
        for name in (
            "status",
            "utility",
            "payment_mode",
            "customer_class",
            "opened_on",
            "household_size",
            "minimum_living_support",
        )
    }
    initial["premise"] = account.premise_id
    initial["opened_on"] = account.opened_on.isoformat()
    initial["contracted_capacity_kva"] = (
        account.contracted_capacity_kva if account.contracted_capacity_kva is not None else ""
    )
    form = Form(fields, request.POST or None, initial=initial)

    def work() -> Account:
        payload = edit_payload(form, null_blank={"contracted_capacity_kva"})
        changes = validated(AccountSerializer, request, payload, instance=account, partial=True)
        return services.update_account(_actor(request), account, changes)

    url = reverse("console:account", args=[account.pk])
    response = _save(request, form, work, lambda _account: url)
    return response or _form_page(
        request,
        form,
        title=_("Edit the account %(number)s") % {"number": account.number},
        cancel_url=url,
        submit_label=_("Save"),
    )


# --- contacts ---------------------------------------------------------------------------------


def _contact_fields(*, new: bool) -> list[Field]:
    return [
        Field("kind", _("Kind"), kind="select", required=True, choices=ContactKind.choices),
        Field(
            "value",
            _("Mobile number or e-mail"),
            required=new,
            autofocus=True,
            help=""
            if new
            else _("Leave empty to keep the value on record (it is not shown here)."),
            send_blank=False,
        ),
        Field("source", _("Source"), kind="select", required=True, choices=ContactSource.choices),
        Field("sms_consent", _("Consents to SMS"), kind="checkbox"),
        Field("is_primary", _("Primary contact"), kind="checkbox"),
    ]


@page("contacts", "add")
def contact_new(request: HttpRequest, customer_id: int) -> HttpResponseBase:
    customer = get_object_or_404(scoped(request, Customer.objects.all()), pk=customer_id)
    form = Form(
        _contact_fields(new=True),
        request.POST or None,
        initial={"kind": ContactKind.MOBILE, "source": ContactSource.COUNTER},
    )

    def work() -> Contact:
        data = {**form.cleaned(), "customer": customer.pk}
        return services.add_contact(_actor(request), **validated(ContactSerializer, request, data))

    url = reverse("console:customer", args=[customer.pk])
    response = _save(request, form, work, lambda _contact: url)
    return response or _form_page(
        request,
        form,
        title=_("Add a contact for %(name)s") % {"name": customer.name},
        cancel_url=url,
        submit_label=_("Add"),
    )


@page("contacts", "change")
def contact_edit(request: HttpRequest, contact_id: int) -> HttpResponseBase:
    contact = get_object_or_404(
        scoped(request, Contact.objects.select_related("customer")), pk=contact_id
    )
    initial = {
        "kind": contact.kind,
        "source": contact.source,
        "sms_consent": contact.sms_consent,
        "is_primary": contact.is_primary,
    }
    form = Form(_contact_fields(new=False), request.POST or None, initial=initial)

    def work() -> Contact:
        changes = validated(
            ContactSerializer, request, form.cleaned(), instance=contact, partial=True
        )
        return services.update_contact(_actor(request), contact, changes)

    url = reverse("console:customer", args=[contact.customer_id])
    response = _save(request, form, work, lambda _contact: url)
    return response or _form_page(
        request,
        form,
        title=_("Edit the contact %(value)s") % {"value": contact.value_masked},
        cancel_url=url,
        submit_label=_("Save"),
    )


@page("contacts", "delete")
def contact_remove(request: HttpRequest, contact_id: int) -> HttpResponseBase:
    """Remove a contact that is no longer the customer's (confirmed first)."""
    contact = get_object_or_404(
        scoped(request, Contact.objects.select_related("customer")), pk=contact_id
    )
    url = reverse("console:customer", args=[contact.customer_id])
    if request.method == "POST":
        services.remove_contact(_actor(request), contact)
        messages.success(request, gettext("The contact was removed."))
        return redirect(url)
    return render(
        request,
        "console/confirm.html",
        {
            "title": gettext("Remove the contact %(value)s") % {"value": contact.value_masked},
            "consequences": [
                gettext("Bills, reminders and SMS no longer go to it."),
                gettext("The audit trail keeps that it was removed, masked."),
            ],
            "form": Form([]),
            "action_url": request.path,
            "cancel_url": url,
            "confirm_label": gettext("Remove"),
        },
    )
