"""Console pages: flagged bills, the verifier's list of drafts held for review (zero, negative,
far from the account's history, credit notes and re-bills), approved one by one on the bill's
page or several at once here, all or none."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from billing.bills import review
from billing.models import BillCheck, FlaggedBill, ReviewState
from console.access import SITES, can, page, scoped
from console.forms import NON_FIELD, Field, Form
from console.lists import Column, Listing
from console.pages.billing.bills import bill_url
from console.pages.billing.common import actor

STATES = [
    ("open", gettext_lazy("Open")),
    ("resolved", gettext_lazy("Resolved")),
    ("all", gettext_lazy("All")),
]
MAX_BATCH = 200


class FlaggedFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        label=gettext_lazy("State"), choices=STATES, method="filter_state", empty_label=None
    )
    check = django_filters.ChoiceFilter(
        label=gettext_lazy("Check"), field_name="first_check", choices=BillCheck.choices
    )
    site = django_filters.ModelChoiceFilter(label=gettext_lazy("Site"), queryset=SITES)
    run = django_filters.NumberFilter(label=gettext_lazy("Bill run"), field_name="bill__run")

    class Meta:
        model = FlaggedBill
        fields: list[str] = []

    def filter_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset if value == "all" else queryset.filter(state=value)


def _check_label(flag: FlaggedBill) -> str:
    labels = []
    for check in flag.checks.split(","):
        try:
            labels.append(str(BillCheck(check).label))
        except ValueError:
            labels.append(check)
    return "、".join(labels)


COLUMNS = [
    Column("bill.number", gettext_lazy("Bill"), link=lambda f: bill_url(f.bill)),
    Column("bill.account.number", gettext_lazy("Account")),
    Column("bill.get_kind_display", gettext_lazy("Kind")),
    Column("checks", gettext_lazy("Checks that fired"), value=_check_label),
    Column("bill.period", gettext_lazy("Period")),
    Column("bill.total", gettext_lazy("Amount (yuan)"), numeric=True),
    Column("bill.created_by_label", gettext_lazy("Proposed by")),
    Column("get_state_display", gettext_lazy("State")),
    Column("created_at", gettext_lazy("Flagged"), sort="id"),
    Column("resolved_by_label", gettext_lazy("Resolved by")),
]


@page("flagged_bills")
def flagged_bills(request: HttpRequest) -> Any:
    queryset = scoped(request, FlaggedBill.objects.select_related("bill", "bill__account"))
    if not request.GET.get("state"):
        queryset = queryset.filter(state=ReviewState.OPEN)
    listing = Listing(
        request,
        queryset,
        columns=COLUMNS,
        filterset=FlaggedFilter,
        export_name="flagged-bills",
    )
    if listing.wants_export:
        return listing.export()
    return render(
        request,
        "console/billing/flagged.html",
        {"listing": listing, "may_approve": can(request, "flagged_bills", "approve")},
        status=200 if listing.valid else 400,
    )


def _ids(raw: list[str]) -> list[int]:
    ids = []
    for item in raw:
        for part in item.split(","):
            if part.strip().isdigit():
                ids.append(int(part))
    return sorted(set(ids))[:MAX_BATCH]


@page("flagged_bills", "approve")
def flagged_bills_approve(request: HttpRequest) -> HttpResponse:
    """Approve the chosen flagged bills at once, after a confirmation listing them: all or
    none, each refusal named (a bill the person produced, one already resolved)."""
    source = request.POST if request.method == "POST" else request.GET
    ids = _ids(source.getlist("ids"))
    flags = list(
        scoped(request, FlaggedBill.objects.select_related("bill", "bill__account"))
        .filter(pk__in=ids)
        .order_by("pk")
    )
    form = Form(
        [Field("ids", "ids", kind="hidden")],
        request.POST if request.method == "POST" else None,
        initial={"ids": ",".join(str(flag.pk) for flag in flags)},
    )
    count = 0
    if request.method == "POST":
        with form.attempt():
            if not flags:
                form.add_errors({NON_FIELD: [_("Choose the flagged bills to approve.")]})
            else:
                count = review.approve_flagged_bills(actor(request), flags)
        if form.ok:
            messages.success(
                request,
                ngettext(
                    "%(count)s bill approved and issued.",
                    "%(count)s bills approved and issued.",
                    count,
                )
                % {"count": count},
            )
            return redirect("console:flagged-bills")
        for message in form.errors.pop("ids", []):
            form.errors.setdefault(NON_FIELD, []).append(message)
    elif not flags:
        form.add_errors({NON_FIELD: [_("Choose the flagged bills to approve.")]})
    total = sum((flag.bill.total for flag in flags), start=0)
    return render(
        request,
        "console/billing/flagged_approve.html",
        {
            "title": ngettext(
                "Approve %(count)s flagged bill", "Approve %(count)s flagged bills", len(flags)
            )
            % {"count": len(flags)},
            "flags": flags,
            "consequences": [
                _(
                    "Each bill is issued with its due date and posted to the ledger; together "
                    "%(amount)s yuan."
                )
                % {"amount": f"{total:,}"},
                _(
                    "All or none: if any one is refused (one you produced, one already "
                    "resolved), none is approved and each refusal is named."
                ),
            ],
            "form": form,
            "may_confirm": bool(flags),
            "action_url": reverse("console:flagged-bills-approve"),
            "cancel_url": reverse("console:flagged-bills"),
            "confirm_label": _("Approve and issue"),
        },
        status=400 if request.method == "POST" else 200,
    )
