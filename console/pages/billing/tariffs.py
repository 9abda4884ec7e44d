"""Console pages: tariffs (list, a tariff's versions with each specification read out, a new
version through a form per kind) and tariff assignments (by class, site and account)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.api import (
    NewVersionSerializer,
    ReasonSerializer,
    TariffAssignmentSerializer,
    TariffSerializer,
)
from billing.models import Tariff, TariffAssignment, TariffVersion
from billing.tariffs import services as tariff_services
from billing.tariffs.services import BackdatedVersionError
from console.access import can, page, scope_for
from console.forms import NON_FIELD, Field, Form, api_request
from console.lists import Column, Listing, listing_response
from console.pages.billing.common import (
    actor,
    may_write_tenant_wide,
    require_tenant_wide,
)
from console.pages.billing.spec_form import (
    GROUP_KEYS,
    field_of_error,
    groups,
    spec_form,
    spec_from_values,
    values_from_spec,
)
from console.pages.billing.specs import describe_spec, kinds_for
from customers.models import Account, CustomerClass, Utility
from tenancy.models import Site
from tenancy.principal import SiteScope

# --- tariffs ----------------------------------------------------------------------------------


class TariffFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(label=gettext_lazy("Code or name"), method="filter_search")
    utility = django_filters.ChoiceFilter(label=gettext_lazy("Utility"), choices=Utility.choices)

    class Meta:
        model = Tariff
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value))


def _tariff_url(tariff: Tariff) -> str:
    return reverse("console:tariff", args=[tariff.pk])


TARIFF_COLUMNS = [
    Column("code", gettext_lazy("Code"), sort="code", link=_tariff_url),
    Column("name", gettext_lazy("Name")),
    Column("get_utility_display", gettext_lazy("Utility")),
    Column("version_count", gettext_lazy("Versions"), numeric=True),
    Column("latest_from", gettext_lazy("Latest version from")),
    Column("created_at", gettext_lazy("Created")),
]


@page("tariffs")
def tariffs(request: HttpRequest) -> HttpResponseBase:
    queryset = Tariff.objects.annotate(
        version_count=Count("versions"), latest_from=Max("versions__effective_from")
    )
    listing = Listing(
        request,
        queryset,
        columns=TARIFF_COLUMNS,
        filterset=TariffFilter,
        default_sort="code",
        export_name="tariffs",
    )
    return listing_response(request, "console/billing/tariffs.html", {"listing": listing})


@page("tariffs", "add")
def tariff_new(request: HttpRequest) -> HttpResponse:
    """A new tariff (its code, name and utility) through the API's serializer and the service;
    its prices come with its first version."""
    require_tenant_wide(request, "tariffs", "add")
    form = Form(
        [
            Field("code", gettext_lazy("Code"), required=True, autofocus=True),
            Field("name", gettext_lazy("Name"), required=True),
            Field("utility", gettext_lazy("Utility"), kind="select", required=True,
                  choices=Utility.choices),
            Field("description", gettext_lazy("Description"), kind="textarea"),
        ],
        request.POST if request.method == "POST" else None,
    )  # fmt: skip
    if request.method == "POST":
        made = None
        with form.attempt():
            body = TariffSerializer(data=form.cleaned(), context={"request": api_request(request)})
            body.is_valid(raise_exception=True)
            made = tariff_services.create_tariff(actor(request), **body.validated_data)
        if made is not None and form.ok:
            messages.success(request, _("Tariff created; add its first version."))
            return redirect("console:tariff", tariff_id=made.pk)
    return render(
        request, "console/billing/tariff_new.html", {"form": form}, status=200 if form.ok else 400
    )


def _assignments_visible(scope: SiteScope, queryset: QuerySet) -> QuerySet:
    """As the API shows them: a class's assignment for every site or for one of the person's
    sites, and the assignments of their sites' accounts."""
    if scope.all_sites:
        return queryset
    site_ids = scope.site_ids
    for_class = Q(account__isnull=True) & (Q(sites__isnull=True) | Q(sites__in=site_ids))
    return queryset.filter(for_class | Q(account__site__in=site_ids)).distinct()


@page("tariffs")
def tariff(request: HttpRequest, tariff_id: int) -> HttpResponse:
    found = get_object_or_404(Tariff.objects.all(), pk=tariff_id)
    today = found.tenant.local_today()
    versions = list(found.versions.order_by("-effective_from"))
    in_force = next((v for v in versions if v.effective_from <= today), None)
    may_remove = may_write_tenant_wide(request, "tariffs", "delete")
    assignments: list[TariffAssignment] = []
    if can(request, "tariff_assignments"):
        assignments = list(
            _assignments_visible(
                scope_for(request, "tariff_assignments"),
                TariffAssignment.objects.filter(tariff=found)
                .select_related("account")
                .prefetch_related("sites"),
            ).order_by("-effective_from", "-id")[:100]
        )
    return render(
        request,
        "console/billing/tariff.html",
        {
            "tariff": found,
            "versions": [
                {
                    "version": v,
                    "described": describe_spec(v.spec, found.utility),
                    "in_force": v == in_force,
                    # Only versions yet to start can be removed: a few at most, each checked.
                    "removable": may_remove
                    and v.effective_from > today
                    and tariff_services.removable(v),
                }
                for v in versions
            ],
            "assignments": assignments,
            "may_add_version": may_write_tenant_wide(request, "tariffs", "change"),
            "may_assign": may_write_tenant_wide(request, "tariff_assignments", "add"),
            "kinds": list(kinds_for(found.utility).items()),
        },
    )


@page("tariffs", "change")
def tariff_version_new(request: HttpRequest, tariff_id: int) -> HttpResponse:
    """A new version from a date, its specification typed into the form of its kind (flat,
    tiered, time of use); it starts from the version in force."""
    require_tenant_wide(request, "tariffs", "change")
    found = get_object_or_404(Tariff.objects.all(), pk=tariff_id)
    latest = found.versions.order_by("-effective_from").first()
    latest_kind, initial = values_from_spec(latest.spec) if latest else ("flat", {})
    kinds = kinds_for(found.utility)
    kind = request.GET.get("kind") or request.POST.get("kind") or latest_kind
    if kind not in kinds:
        kind = "flat"
    if kind != latest_kind:
        initial = {key: value for key, value in initial.items() if not _kind_specific(key)}
    form = spec_form(
        kind, found.utility, request.POST if request.method == "POST" else None, initial
    )
    backdated = None
    if request.method == "POST":
        version, backdated = _add_version(request, found, kind, form)
        if version is not None:
            messages.success(
                request,
                _("Version from %(day)s added.") % {"day": version.effective_from.isoformat()},
            )
            return redirect("console:tariff", tariff_id=found.pk)
    known = {spec.name for spec in form.fields} | set(GROUP_KEYS)
    return render(
        request,
        "console/billing/tariff_version_new.html",
        {
            "tariff": found,
            "kind": kind,
            "kind_label": kinds[kind],
            "kinds": list(kinds.items()),
            "form": form,
            "groups": groups(form, kind),
            "other_errors": [
                message if name == NON_FIELD else f"{name}: {message}"
                for name, found_messages in form.errors.items()
                if name not in known
                for message in found_messages
            ],
            "backdated": backdated,
            "confirm_field": next(b for b in form.bound if b.field.name == "confirm_backdated"),
        },
        status=400 if not form.ok else 409 if backdated else 200,
    )


_SHARED = (
    "large_household",
    "free_allowance",
    "fixed_monthly",
    "capacity",
    "demand",
    "power_factor",
    "agency",
    "funds",
    "common_area",
    "resale",
    "vat",
)


def _kind_specific(name: str) -> bool:
    return not name.startswith(_SHARED)


def _add_version(
    request: HttpRequest, tariff_obj: Tariff, kind: str, form: Form
) -> tuple[TariffVersion | None, BackdatedVersionError | None]:
    """Build the specification from the form, check the body with the API's serializer and add
    the version with the service; every error lands by field at once (a figure that cannot be
    read as typed is named once, by the form). A version backdated over issued bills comes
    back as the service's refusal, for the page to ask for confirmation."""
    values = {key: form.value(key) for key in dict(form.data or {})}
    spec, rows, unreadable = spec_from_values(kind, values)
    form.add_errors(unreadable)
    version = backdated = None
    with form.attempt():
        body = NewVersionSerializer(
            data={
                "effective_from": form.value("effective_from"),
                "spec": spec,
                "note": form.value("note"),
                "confirm_backdated": form.cleaned()["confirm_backdated"],
            }
        )
        body.is_valid(raise_exception=True)
        if not unreadable:
            try:
                version = tariff_services.add_tariff_version(
                    actor(request), tariff_obj, **body.validated_data
                )
            except BackdatedVersionError as exc:
                backdated = exc
    for message in form.errors.pop("spec", []):
        name, text = field_of_error(message, rows)
        if name not in unreadable:
            form.errors.setdefault(name, []).append(text)
    return (version if form.ok else None), backdated


@page("tariffs", "delete")
def tariff_version_remove(request: HttpRequest, tariff_id: int, version_id: int) -> HttpResponse:
    """Remove a mistyped version before it takes effect, with a reason (the service refuses a
    version in effect or priced with)."""
    require_tenant_wide(request, "tariffs", "delete")
    version = get_object_or_404(
        TariffVersion.objects.select_related("tariff__tenant"), pk=version_id, tariff_id=tariff_id
    )
    form = Form(
        [Field("reason", _("Reason"), kind="textarea", required=True, autofocus=True)],
        request.POST if request.method == "POST" else None,
    )
    if form.submitted:
        with form.attempt():
            body = ReasonSerializer(data=form.cleaned())
            body.is_valid(raise_exception=True)
            tariff_services.delete_tariff_version(
                actor(request), version, body.validated_data["reason"]
            )
        if form.ok:
            messages.success(
                request,
                _("Version from %(day)s removed.") % {"day": version.effective_from.isoformat()},
            )
            return redirect("console:tariff", tariff_id=tariff_id)
    return render(
        request,
        "console/confirm.html",
        {
            "title": _("Remove the version of %(code)s from %(day)s")
            % {"code": version.tariff.code, "day": version.effective_from.isoformat()},
            "consequences": [
                _(
                    "The version is removed before it takes effect: the tariff keeps its "
                    "other versions."
                ),
                _("Its prices and the reason are recorded in the audit trail."),
            ],
            "form": form,
            "action_url": reverse("console:tariff-version-remove", args=[tariff_id, version.pk]),
            "cancel_url": reverse("console:tariff", args=[tariff_id]),
            "confirm_label": _("Remove"),
        },
        status=200 if form.ok else 400,
    )


# --- assignments ------------------------------------------------------------------------------


class AssignmentFilter(django_filters.FilterSet):
    tariff = django_filters.ModelChoiceFilter(
        label=gettext_lazy("Tariff"), queryset=Tariff.objects.order_by("code")
    )
    customer_class = django_filters.ChoiceFilter(
        label=gettext_lazy("Customer class"), choices=CustomerClass.choices
    )
    account = django_filters.CharFilter(
        label=gettext_lazy("Account number"), field_name="account__number"
    )

    class Meta:
        model = TariffAssignment
        fields: list[str] = []


def _target(assignment: TariffAssignment) -> str:
    if assignment.account is not None:
        return _("Account %(number)s") % {"number": assignment.account.number}
    return str(assignment.get_customer_class_display())


def _sites(assignment: TariffAssignment) -> str:
    if assignment.account is not None:
        return _("the account's site")
    names = [site.name for site in assignment.sites.all()]
    return "、".join(names) if names else _("every site")


ASSIGNMENT_COLUMNS = [
    Column("id", gettext_lazy("Id"), sort="id"),
    Column(
        "tariff",
        gettext_lazy("Tariff"),
        value=lambda a: str(a.tariff),
        link=lambda a: reverse("console:tariff", args=[a.tariff_id]),
    ),
    Column("target", gettext_lazy("Applies to"), value=_target),
    Column("sites", gettext_lazy("Sites"), value=_sites),
    Column("effective_from", gettext_lazy("From")),
    Column("effective_to", gettext_lazy("Until (exclusive)")),
]


@page("tariff_assignments")
def tariff_assignments(request: HttpRequest) -> HttpResponseBase:
    queryset = _assignments_visible(
        request.site_scope,  # type: ignore[attr-defined]  # set by @page
        TariffAssignment.objects.select_related("tariff", "account").prefetch_related("sites"),
    )
    listing = Listing(
        request,
        queryset,
        columns=ASSIGNMENT_COLUMNS,
        filterset=AssignmentFilter,
        export_name="tariff-assignments",
    )
    return listing_response(
        request,
        "console/billing/assignments.html",
        {
            "listing": listing,
            "may_assign": may_write_tenant_wide(request, "tariff_assignments", "add"),
        },
    )


def _assignment_form(data: Any, initial: dict[str, Any]) -> Form:
    tariffs_choice = [(t.pk, str(t)) for t in Tariff.objects.order_by("code")]
    site_fields = [
        Field(f"site_{site.pk}", _("Only at %(site)s") % {"site": site.name}, kind="checkbox")
        for site in Site.objects.order_by("name")
    ]
    return Form(
        [
            Field(
                "tariff",
                gettext_lazy("Tariff"),
                kind="select",
                required=True,
                choices=tariffs_choice,
            ),
            Field(
                "account",
                gettext_lazy("Account number"),
                help=gettext_lazy(
                    "One account (it wins over its class), or leave empty and "
                    "choose a customer class."
                ),
                send_blank=False,
            ),
            Field(
                "customer_class",
                gettext_lazy("Customer class"),
                kind="select",
                choices=CustomerClass.choices,
            ),
            *site_fields,
            Field("effective_from", gettext_lazy("Effective from"), kind="date", required=True),
            Field("effective_to", gettext_lazy("Until (exclusive)"), kind="date"),
        ],
        data,
        initial=initial,
    )


@page("tariff_assignments", "add")
def tariff_assignment_new(request: HttpRequest) -> HttpResponse:
    """Assign a tariff to one account, or to a customer class at every site or some sites,
    through the API's serializer and the service (overlaps refused)."""
    require_tenant_wide(request, "tariff_assignments", "add")
    form = _assignment_form(
        request.POST if request.method == "POST" else None,
        {"tariff": request.GET.get("tariff", "")},
    )
    if request.method == "POST":
        assignment = None
        with form.attempt():
            data: dict[str, Any] = {
                "tariff": form.value("tariff") or None,
                "customer_class": form.value("customer_class"),
                "effective_from": form.value("effective_from") or None,
                "effective_to": form.value("effective_to") or None,
                "sites": [
                    int(spec.name.removeprefix("site_"))
                    for spec in form.fields
                    if spec.name.startswith("site_") and form.cleaned().get(spec.name)
                ],
            }
            number = str(form.value("account")).strip()
            unknown_account = False
            if number:
                account = Account.objects.filter(number=number).first()
                unknown_account = account is None
                data["account"] = None if account is None else account.pk
            body = TariffAssignmentSerializer(data=data, context={"request": api_request(request)})
            valid = body.is_valid()
            if unknown_account or not valid:
                # Every error at once: a mistyped account number and a wrong date together.
                errors = {} if valid else dict(body.errors)
                if unknown_account:
                    errors.pop("non_field_errors", None)  # "choose an account or a class"
                    errors["account"] = [_("No account has this number.")]
                raise ValidationError(errors)
            assignment = tariff_services.assign_tariff_from_api(
                actor(request), **body.validated_data
            )
        if assignment is not None and form.ok:
            messages.success(request, _("Tariff assigned."))
            return redirect("console:tariff", tariff_id=assignment.tariff_id)
    return render(
        request,
        "console/billing/assignment_new.html",
        {"form": form},
        status=200 if form.ok else 400,
    )
