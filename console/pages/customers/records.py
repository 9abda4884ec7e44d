"""An account's page and a customer's page: what the counter needs in one place. Each part is
shown to the roles the permission matrix lets see it on the object's site: contacts, bills,
the ledger balance and lines, and the audit history."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from billing.models import Bill
from collection.models import Payment
from collection.services.closing import closing_under_way
from console.access import can, page, scoped
from console.pages.customers._common import may
from customers.models import Account, Contact, Customer
from ledger.services import account_ledger
from metering.models import Meter
from tenancy.models import AuditEvent

HISTORY_SHOWN = 20
BILLS_SHOWN = 24
PAYMENTS_SHOWN = 5


def history(obj: Any) -> list[AuditEvent]:
    """The latest audit events about ``obj`` (the audit trail's index on object type and id)."""
    return list(
        AuditEvent.objects.filter(
            object_type=obj._meta.label_lower, object_id=str(obj.pk)
        ).order_by("-id")[:HISTORY_SHOWN]
    )


def _contacts() -> Prefetch:
    return Prefetch("contacts", queryset=Contact.objects.order_by("-is_primary", "id"))


@page("accounts")
def account_page(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(
        scoped(request, Account.objects.select_related("site", "premise", "customer")),
        pk=account_id,
    )
    site_id = account.site_id
    sees_customer = may(request, "customers", "view", site_id)
    context: dict[str, Any] = {
        "account": account,
        "premise": account.premise,
        "customer": account.customer if sees_customer else None,
        "sees_contacts": may(request, "contacts", "view", site_id),
        "can_reveal": may(request, "customers", "reveal", site_id),
        "can_change": may(request, "accounts", "change", site_id),
        "can_change_premise": may(request, "premises", "change", site_id),
        "meters": list(Meter.objects.filter(account=account).order_by("-installed_on", "-id")),
        "closing": closing_under_way(account),
        "sees_closing": can(request, "account_closings"),
    }
    if may(request, "bills", "view", site_id):
        context["bills"] = list(
            Bill.objects.filter(account=account)
            .only("id", "number", "period", "kind", "state", "total", "due_date", "issued_at")
            .order_by("-period", "-id")[:BILLS_SHOWN]
        )
    if may(request, "payments", "view", site_id):
        context["payments"] = list(
            Payment.objects.filter(account=account)
            .prefetch_related("receipts", "reversals")
            .order_by("-id")[:PAYMENTS_SHOWN]
        )
        context["may_take_payment"] = may(request, "payments", "add", site_id)
    if may(request, "ledger", "view", site_id):
        context["ledger"] = account_ledger(account)
    if may(request, "audit_events", "view", site_id):
        context["history"] = history(account)
        context["audit_url"] = can(request, "audit_events")
    return render(request, "console/customers/account.html", context)


@page("customers")
def customer_page(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(
        scoped(request, Customer.objects.select_related("site").prefetch_related(_contacts())),
        pk=customer_id,
    )
    site_id = customer.site_id
    context: dict[str, Any] = {
        "customer": customer,
        "sees_contacts": may(request, "contacts", "view", site_id),
        "can_reveal": may(request, "customers", "reveal", site_id),
        "can_change": may(request, "customers", "change", site_id),
        "can_add_contact": may(request, "contacts", "add", site_id),
        "can_change_contact": may(request, "contacts", "change", site_id),
        "can_remove_contact": may(request, "contacts", "delete", site_id),
        "can_open_account": may(request, "accounts", "add", site_id),
        "accounts": list(
            scoped(request, Account.objects.select_related("premise"))
            .filter(customer=customer)
            .order_by("number")
        ),
    }
    if may(request, "audit_events", "view", site_id):
        context["history"] = history(customer)
    return render(request, "console/customers/customer.html", context)
