"""Console pages: bills. A searchable list (number, account, customer, site, period, state), a
bill's page (lines, amounts, state, ledger postings, the document and its PDF), and its
corrections: a credit note or a re-bill with a reason, which a second person approves (four
eyes, enforced by the services; the page says who proposed and who may approve)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from billing.api import ReasonSerializer
from billing.bills import corrections, review
from billing.bills.documents import render_bill
from billing.models import (
    Bill,
    BillCheck,
    BillKind,
    BillLine,
    BillRun,
    BillState,
    FlaggedBill,
    ReviewState,
)
from billing.runs.services import same_actor
from console.access import SITES, can, page, principal_of, scoped
from console.filters import PeriodFilter
from console.forms import Field, Form
from console.lists import Column, Listing
from console.pages.billing.common import actor
from ledger.models import JournalEntry, JournalLine


class BillFilter(django_filters.FilterSet):
    number = django_filters.CharFilter(label=gettext_lazy("Bill number"), method="filter_number")
    account = django_filters.CharFilter(
        label=gettext_lazy("Account number"), field_name="account__number"
    )
    customer = django_filters.CharFilter(
        label=gettext_lazy("Customer name"), field_name="buyer_name", lookup_expr="icontains"
    )
    site = django_filters.ModelChoiceFilter(label=gettext_lazy("Site"), queryset=SITES)
    period = PeriodFilter()
    state = django_filters.ChoiceFilter(label=gettext_lazy("State"), choices=BillState.choices)
    kind = django_filters.ChoiceFilter(label=gettext_lazy("Kind"), choices=BillKind.choices)

    class Meta:
        model = Bill
        fields: list[str] = []

    def filter_number(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(number=value.strip())


def bill_url(bill: Bill) -> str:
    return reverse("console:bill", args=[bill.pk])


BILL_COLUMNS = [
    Column("number", gettext_lazy("Number"), sort="number", link=bill_url),
    Column("get_kind_display", gettext_lazy("Kind")),
    Column("get_state_display", gettext_lazy("State")),
    Column("account.number", gettext_lazy("Account")),
    Column("buyer_name", gettext_lazy("Customer")),
    Column("site.name", gettext_lazy("Site")),
    Column("period", gettext_lazy("Period")),
    Column("total", gettext_lazy("Amount (yuan)"), numeric=True),
    Column("due_date", gettext_lazy("Due")),
    Column("issued_at", gettext_lazy("Issued")),
]


@page("bills")
def bills(request: HttpRequest) -> Any:
    listing = Listing(
        request,
        scoped(request, Bill.objects.select_related("account", "site")),
        columns=BILL_COLUMNS,
        filterset=BillFilter,
        export_name="bills",
    )
    if listing.wants_export:
        return listing.export()
    return render(
        request,
        "console/billing/bills.html",
        {"listing": listing},
        status=200 if listing.valid else 400,
    )


def _scoped_bill(request: HttpRequest, bill_id: int) -> Bill:
    return get_object_or_404(
        scoped(request, Bill.objects.select_related("account", "site")), pk=bill_id
    )


def _review(request: HttpRequest, bill: Bill) -> dict[str, Any]:
    """Who proposed a draft waiting for review, who may approve it, and whether this person
    may: nobody approves what they produced or a bill of a run they started."""
    flag = FlaggedBill.objects.filter(bill=bill).first()
    if flag is None or bill.state != BillState.DRAFT:
        return {"flag": flag, "waiting": False}
    run = BillRun.objects.filter(pk=bill.run_id).first() if bill.run_id else None
    principal = principal_of(request)
    excluded = [bill.created_by_label]
    if run is not None and run.started_by_label not in excluded:
        excluded.append(run.started_by_label)
    own = principal is not None and (
        same_actor(principal, bill.created_by_kind, bill.created_by_id)
        or (run is not None and same_actor(principal, run.started_by_kind, run.started_by_id))
    )
    return {
        "flag": flag,
        "waiting": flag.state == ReviewState.OPEN,
        "checks": [_check_label(check) for check in flag.checks.split(",") if check],
        "proposed_by": bill.created_by_label,
        "excluded": "、".join(excluded),
        "own": own,
        "may_approve": flag.state == ReviewState.OPEN
        and can(request, "bills", "approve")
        and not own,
    }


def _check_label(check: str) -> str:
    try:
        return str(BillCheck(check).label)
    except ValueError:
        return check


@page("bills")
def bill(request: HttpRequest, bill_id: int) -> HttpResponse:
    found = _scoped_bill(request, bill_id)
    lines = list(BillLine.objects.filter(bill=found).order_by("position"))
    entry = JournalEntry.objects.filter(pk=found.entry_id).first() if found.entry_id else None
    postings = (
        list(
            JournalLine.objects.filter(
                entry_id=found.entry_id, reference=f"{found.source_type}:{found.pk}"
            ).select_related("ledger_account")
        )
        if entry is not None
        else []
    )
    corrections_made = list(
        Bill.objects.filter(account_id=found.account_id, corrects=found).order_by("id")
    )
    correctable = (
        found.state == BillState.ISSUED
        and found.kind != BillKind.CREDIT_NOTE
        and not any(
            c.kind == BillKind.CREDIT_NOTE and c.state != BillState.VOID for c in corrections_made
        )
    )
    return render(
        request,
        "console/billing/bill.html",
        {
            "bill": found,
            "lines": lines,
            "entry": entry,
            "postings": postings,
            "corrections": corrections_made,
            "may_correct": correctable and can(request, "bills", "correct"),
            "may_void": found.state == BillState.DRAFT and can(request, "bills", "correct"),
            "review": _review(request, found),
        },
    )


@page("bills")
def bill_document(request: HttpRequest, bill_id: int) -> HttpResponse:
    """A bill as its customer sees it, for the staff who may see bills of its site; the same
    document as the PDF (``?as=pdf``), in the page's language or ``?lang=``."""
    found = _scoped_bill(request, bill_id)
    language = request.GET.get("lang") or get_language() or "zh-hans"
    language = "en" if language.startswith("en") else "zh-hans"
    as_pdf = request.GET.get("as") == "pdf"
    body, content_type = render_bill(found, language=language, as_pdf=as_pdf)
    response = HttpResponse(body, content_type=content_type)
    if as_pdf:
        response["Content-Disposition"] = f'inline; filename="bill-{found.number}.pdf"'
    return response


def _reason_form(data: Any) -> Form:
    return Form(
        [
            Field(
                "reason",
                gettext_lazy("Reason"),
                kind="textarea",
                required=True,
                help=gettext_lazy("Kept with the correction and shown to the second person."),
                autofocus=True,
            )
        ],
        data,
    )


def _correct(request: HttpRequest, bill_id: int, *, rebill: bool) -> HttpResponse:
    found = _scoped_bill(request, bill_id)
    form = _reason_form(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        made: Bill | None = None
        again: Bill | None = None
        with form.attempt():
            body = ReasonSerializer(data={"reason": form.value("reason")})
            body.is_valid(raise_exception=True)
            reason = body.validated_data["reason"]
            if rebill:
                made, again = corrections.rebill(actor(request), found, reason)
            else:
                made = corrections.credit_bill(actor(request), found, reason)
        if made is not None and form.ok:
            if again is not None:
                text = _(
                    "Credit note %(number)s and re-bill %(rebill)s drafted; a second person "
                    "approves them."
                ) % {"number": made.number, "rebill": again.number}
            else:
                text = _("Credit note %(number)s drafted; a second person approves it.") % {
                    "number": made.number
                }
            messages.success(request, text)
            return redirect("console:bill", bill_id=found.pk)
    consequences = [
        _(
            "A credit note reversing bill %(number)s line by line (%(amount)s yuan) is drafted; "
            "the bill itself is never changed."
        )
        % {"number": found.number, "amount": f"{-found.total:,}"},
    ]
    if rebill:
        consequences.append(
            _(
                "A re-bill is priced from the account's period consumption as it stands now "
                "(with the verifiers' corrections)."
            )
        )
    consequences += [
        _(
            "Both wait for a second person: a verifier or administrator other than you approves "
            "them, which issues them and posts them to the ledger."
        ),
        _(
            "Later bills of the same tier year whose amount changes are credited and re-billed "
            "too, for the same second person."
        ),
    ]
    title = (_("Re-bill %(number)s") if rebill else _("Credit bill %(number)s")) % {
        "number": found.number
    }
    return render(
        request,
        "console/confirm.html",
        {
            "title": title,
            "consequences": consequences,
            "form": form,
            "action_url": reverse(
                "console:bill-rebill" if rebill else "console:bill-credit", args=[found.pk]
            ),
            "cancel_url": reverse("console:bill", args=[found.pk]),
            "confirm_label": _("Draft the re-bill") if rebill else _("Draft the credit note"),
        },
        status=400 if request.method == "POST" else 200,
    )


@page("bills", "correct")
def bill_credit(request: HttpRequest, bill_id: int) -> HttpResponse:
    return _correct(request, bill_id, rebill=False)


@page("bills", "correct")
def bill_rebill(request: HttpRequest, bill_id: int) -> HttpResponse:
    return _correct(request, bill_id, rebill=True)


@page("bills", "correct")
def bill_void(request: HttpRequest, bill_id: int) -> HttpResponse:
    """Void a draft that must not be issued, with a reason; a correction is voided whole (its
    credit note and re-bill together), as the service does."""
    found = _scoped_bill(request, bill_id)
    form = _reason_form(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        with form.attempt():
            body = ReasonSerializer(data={"reason": form.value("reason")})
            body.is_valid(raise_exception=True)
            review.void_bill(actor(request), found, body.validated_data["reason"])
        if form.ok:
            messages.success(request, _("Bill %(number)s voided.") % {"number": found.number})
            return redirect("console:bill", bill_id=found.pk)
    return render(
        request,
        "console/confirm.html",
        {
            "title": _("Void %(kind)s %(number)s")
            % {"kind": found.get_kind_display(), "number": found.number},
            "consequences": [
                _("The draft is never issued; it keeps its number, marked void, with your reason."),
                _(
                    "A credit note and its re-bill are voided together, with the re-pricing of "
                    "later bills they caused."
                ),
                _("The customer owes nothing for it; correct the account and bill it again."),
            ],
            "form": form,
            "action_url": reverse("console:bill-void", args=[found.pk]),
            "cancel_url": reverse("console:bill", args=[found.pk]),
            "confirm_label": _("Void the draft"),
        },
        status=400 if request.method == "POST" else 200,
    )


@page("bills", "approve")
def bill_approve(request: HttpRequest, bill_id: int) -> HttpResponse:
    """Approve a draft waiting for review (a flagged bill, a credit note, a re-bill): it is
    issued and posted. The service refuses whoever produced it."""
    found = _scoped_bill(request, bill_id)
    form = Form([], request.POST if request.method == "POST" else None)
    if request.method == "POST":
        with form.attempt():
            review.approve_bill(actor(request), found)
        if form.ok:
            messages.success(
                request, _("Bill %(number)s approved and issued.") % {"number": found.number}
            )
            return redirect("console:bill", bill_id=found.pk)
    state = _review(request, found)
    if request.method == "GET":
        if not state["waiting"]:
            form.add_errors({"__all__": [_("The bill is not waiting for review.")]})
        elif state["own"]:
            form.add_errors(
                {"__all__": [_("You produced this bill: a second person approves it.")]}
            )
    what = {
        BillKind.CREDIT_NOTE: _(
            "The credit note is issued: the customer owes %(amount)s yuan "
            "less, posted to the ledger."
        ),
        BillKind.REBILL: _(
            "The re-bill is issued with its due date and posted to the ledger: "
            "the customer owes %(amount)s yuan for it."
        ),
    }.get(
        BillKind(found.kind),
        _(
            "The bill is issued with its due date and posted to the "
            "ledger: the customer owes %(amount)s yuan for it."
        ),
    )
    amount = -found.total if found.kind == BillKind.CREDIT_NOTE else found.total
    return render(
        request,
        "console/billing/approve.html",
        {
            "title": _("Approve %(kind)s %(number)s")
            % {"kind": found.get_kind_display(), "number": found.number},
            "bill": found,
            "consequences": [
                what % {"amount": f"{amount:,}"},
                _("Proposed by %(who)s (%(reason)s); you approve as the second person.")
                % {"who": found.created_by_label, "reason": found.reason or found.checks},
            ],
            "form": form,
            "may_confirm": state["waiting"] and not state["own"],
            "action_url": reverse("console:bill-approve", args=[found.pk]),
            "cancel_url": reverse("console:bill", args=[found.pk]),
            "confirm_label": _("Approve and issue"),
        },
        status=400 if request.method == "POST" else 200,
    )
