"""Write actions for customers, accounts, premises and contacts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.identifiers import (
    make_account_number,
    mask_identifier,
    mask_mobile,
    normalise_identity_number,
    normalise_mobile,
    validate_account_number,
    validate_credit_code,
    validate_identity_number,
)
from customers.models import (
    Account,
    AccountStatus,
    Contact,
    ContactKind,
    Customer,
    CustomerKind,
    Premise,
)
from tenancy.audit import (
    AuditAction,
    audit_snapshot,
    create_with_audit,
    delete_with_audit,
    record_audit,
    update_with_audit,
)
from tenancy.fields import search_hash
from tenancy.models import EARLIEST_CALENDAR_DAY
from tenancy.principal import Principal
from tenancy.sequences import take_next

# --- customers --------------------------------------------------------------------------------


def normalise_customer_id(kind: str, id_number: str) -> str:
    """Validated and normalised identity number (person) or credit code (organisation)."""
    if not id_number:
        return ""
    normalised = normalise_identity_number(id_number)
    try:
        if kind == CustomerKind.ORGANISATION:
            validate_credit_code(normalised)
        else:
            validate_identity_number(normalised)
    except ValidationError as exc:
        raise ValidationError({"id_number": exc.error_list}) from exc
    return normalised


def _check_id_number_free(customer_id: int | None, id_hash: str) -> None:
    if not id_hash:
        return
    clash = Customer.objects.filter(id_number_hash=id_hash)
    if customer_id is not None:
        clash = clash.exclude(pk=customer_id)
    if clash.exists():
        raise ValidationError({"id_number": _("A customer with this number is registered.")})


def register_customer(actor: Principal, **fields: Any) -> Customer:
    id_number = normalise_customer_id(fields["kind"], fields.pop("id_number", ""))
    id_hash = search_hash(id_number)
    with transaction.atomic():
        _check_id_number_free(None, id_hash)
        return create_with_audit(
            actor,
            Customer,
            AuditAction.CUSTOMER_REGISTERED,
            id_number=id_number,
            id_number_hash=id_hash,
            **fields,
        )


def update_customer(actor: Principal, customer: Customer, changes: dict[str, Any]) -> Customer:
    """Change a customer's details. A customer with accounts stays in their site: the accounts
    and their premises are the site's (close them and open new ones in the other site)."""
    if (
        "site" in changes
        and changes["site"] != customer.site
        and Account.objects.filter(customer=customer).exists()
    ):
        raise ValidationError(
            {"site": _("A customer with accounts cannot move to another site.")},
            code="has_accounts",
        )
    if "id_number" in changes or "kind" in changes:
        kind = changes.get("kind", customer.kind)
        id_number = normalise_customer_id(kind, changes.get("id_number", customer.id_number))
        changes["id_number"] = id_number
        changes["id_number_hash"] = search_hash(id_number)
    with transaction.atomic():
        if "id_number_hash" in changes:
            _check_id_number_free(customer.pk, changes["id_number_hash"])
        return update_with_audit(actor, customer, changes, AuditAction.CUSTOMER_UPDATED)


def reveal_customer_pii(actor: Principal, customer: Customer) -> dict[str, Any]:
    """The unmasked identity number and contact values; every reveal is audited (PIPL)."""
    contacts = list(customer.contacts.order_by("id"))
    record_audit(
        actor,
        AuditAction.CUSTOMER_PII_REVEALED,
        customer,
        after={"fields": ["id_number", "contacts.value"], "contact_ids": [c.pk for c in contacts]},
    )
    return {
        "id": customer.pk,
        "id_number": customer.id_number,
        "contacts": [{"id": c.pk, "kind": c.kind, "value": c.value} for c in contacts],
    }


def record_pii_search(actor: Principal, field: str, value: str, found: models.QuerySet) -> None:
    """Every search by identity or mobile number is in the audit trail: who searched, by
    which field, for what (masked) and which records it found."""
    masked = mask_mobile(value) if field == "mobile" else mask_identifier(value)
    ids = list(found.values_list("pk", flat=True)[:20])
    record_audit(
        actor,
        AuditAction.PII_SEARCHED,
        object_type=found.model._meta.label_lower,
        object_ids=ids,
        after={"field": field, "searched_for": masked, "found": len(ids)},
    )


# --- premises ---------------------------------------------------------------------------------


def _check_premise_area(site_id: int, transformer_area: Any) -> None:
    if transformer_area is not None and transformer_area.site_id != site_id:
        raise ValidationError(
            {"transformer_area": _("The transformer area belongs to another site.")}
        )


def create_premise(actor: Principal, **fields: Any) -> Premise:
    _check_premise_area(fields["site"].pk, fields.get("transformer_area"))
    return create_with_audit(actor, Premise, AuditAction.PREMISE_CREATED, **fields)


def update_premise(actor: Principal, premise: Premise, changes: dict[str, Any]) -> Premise:
    site = changes.get("site", premise.site)
    if "site" in changes and changes["site"] != premise.site and premise.accounts.exists():
        raise ValidationError({"site": _("A premise with accounts cannot move to another site.")})
    _check_premise_area(site.pk, changes.get("transformer_area", premise.transformer_area))
    return update_with_audit(actor, premise, changes, AuditAction.PREMISE_UPDATED)


def delete_premise(actor: Principal, premise: Premise) -> None:
    """A premise with accounts is in use and stays (409)."""
    delete_with_audit(actor, premise, AuditAction.PREMISE_DELETED)


# --- accounts ---------------------------------------------------------------------------------

ACCOUNT_NUMBER_SEQUENCE = "account_number"


def _check_opened_on(opened_on: date) -> None:
    """An account opens on a day of the tenant's calendar (from 2000) and at most a year ahead:
    1900 or 2099 is a typing mistake, and billing and late fees count from this day."""
    today = timezone.localdate()
    try:
        latest = today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        latest = today + timedelta(days=365)
    if not EARLIEST_CALENDAR_DAY <= opened_on <= latest:
        raise ValidationError(
            {
                "opened_on": _("An account opens between %(first)s and %(last)s.")
                % {"first": f"{EARLIEST_CALENDAR_DAY:%Y-%m-%d}", "last": f"{latest:%Y-%m-%d}"}
            },
            code="opened_on",
        )


def _check_premise_free(premise: Premise, utility: str, account_id: int | None) -> None:
    """A premise has one open account per utility (one supply is billed once)."""
    clash = Account.objects.filter(premise=premise, utility=utility).exclude(
        status=AccountStatus.CLOSED
    )
    if account_id is not None:
        clash = clash.exclude(pk=account_id)
    if clash.exists():
        raise ValidationError(
            {"premise": _("The premise already has an open account for this utility.")},
            code="premise_taken",
        )


def open_account(actor: Principal, *, number: str = "", **fields: Any) -> Account:
    """Open an account at a premise; its site is the premise's. Without a number, the next
    one of the tenant's sequence is given, with its check digit."""
    premise: Premise = fields["premise"]
    fields["site"] = premise.site
    fields.setdefault("opened_on", timezone.localdate())
    _check_opened_on(fields["opened_on"])
    with transaction.atomic():
        _check_premise_free(
            premise, fields.get("utility", Account._meta.get_field("utility").default), None
        )
        if number:
            validate_account_number(number)
        else:
            number = _free_account_number(actor)
        if Account.objects.filter(number=number).exists():
            raise ValidationError({"number": _("This account number is in use.")})
        return create_with_audit(
            actor, Account, AuditAction.ACCOUNT_OPENED, number=number, **fields
        )


def _free_account_number(actor: Principal) -> str:
    """The next generated number not already taken by an imported one."""
    assert actor.tenant is not None
    while True:
        number = make_account_number(take_next(actor.tenant, ACCOUNT_NUMBER_SEQUENCE))
        if not Account.objects.filter(number=number).exists():
            return number


_STATUS_MOVES = {
    AccountStatus.ACTIVE: {AccountStatus.SUSPENDED, AccountStatus.CLOSED},
    AccountStatus.SUSPENDED: {AccountStatus.ACTIVE, AccountStatus.CLOSED},
    AccountStatus.CLOSED: set(),
}


def update_account(actor: Principal, account: Account, changes: dict[str, Any]) -> Account:
    """Change an account's terms or status. A closed account stays closed (a new account is
    opened instead); closing records the closing date."""
    for fixed in ("number", "customer", "site"):
        if fixed in changes and changes[fixed] != getattr(account, fixed):
            raise ValidationError({fixed: _("This cannot change on an open account.")})
    if "premise" in changes:
        changes["site"] = changes["premise"].site
        if changes["site"] != account.site:
            raise ValidationError({"premise": _("The premise belongs to another site.")})
    new_status = changes.get("status", account.status)
    if new_status != account.status:
        if new_status not in _STATUS_MOVES[AccountStatus(account.status)]:
            raise ValidationError(
                {
                    "status": _("An account cannot go from %(old)s to %(new)s.")
                    % {"old": account.status, "new": new_status}
                }
            )
        if new_status == AccountStatus.CLOSED:
            changes.setdefault("closed_on", timezone.localdate())
    if "opened_on" in changes and changes["opened_on"] != account.opened_on:
        _check_opened_on(changes["opened_on"])
    with transaction.atomic():
        premise = changes.get("premise", account.premise)
        utility = changes.get("utility", account.utility)
        moved = premise != account.premise or utility != account.utility
        if moved and new_status != AccountStatus.CLOSED:
            _check_premise_free(premise, utility, account.pk)
        return update_with_audit(actor, account, changes, AuditAction.ACCOUNT_UPDATED)


# --- contacts ---------------------------------------------------------------------------------


def normalise_contact(kind: str, value: str) -> str:
    try:
        if kind == ContactKind.MOBILE:
            return normalise_mobile(value)
    except ValidationError as exc:
        raise ValidationError({"value": exc.error_list}) from exc
    email = value.strip()
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain) or " " in email:
        raise ValidationError({"value": _("Enter a valid e-mail address.")})
    return email.lower()


def _check_sms_consent(kind: str, sms_consent: bool) -> None:
    if sms_consent and kind != ContactKind.MOBILE:
        raise ValidationError({"sms_consent": _("Only a mobile number can receive SMS.")})


def _check_contact_free(customer: Customer, value_hash: str, contact_id: int | None) -> None:
    clash = Contact.objects.filter(customer=customer, value_hash=value_hash)
    if contact_id is not None:
        clash = clash.exclude(pk=contact_id)
    if clash.exists():
        raise ValidationError({"value": _("The customer already has this contact.")})


def add_contact(actor: Principal, **fields: Any) -> Contact:
    value = normalise_contact(fields["kind"], fields.pop("value"))
    _check_sms_consent(fields["kind"], fields.get("sms_consent", False))
    value_hash = search_hash(value)
    with transaction.atomic():
        _check_contact_free(fields["customer"], value_hash, None)
        if fields.get("is_primary"):
            Contact.objects.filter(customer=fields["customer"]).update(is_primary=False)
        return create_with_audit(
            actor,
            Contact,
            AuditAction.CONTACT_ADDED,
            value=value,
            value_hash=value_hash,
            **fields,
        )


def update_contact(actor: Principal, contact: Contact, changes: dict[str, Any]) -> Contact:
    if "customer" in changes and changes["customer"] != contact.customer:
        raise ValidationError({"customer": _("A contact cannot move to another customer.")})
    kind = changes.get("kind", contact.kind)
    if "value" in changes or "kind" in changes:
        changes["value"] = normalise_contact(kind, changes.get("value", contact.value))
        changes["value_hash"] = search_hash(changes["value"])
    _check_sms_consent(kind, changes.get("sms_consent", contact.sms_consent))
    with transaction.atomic():
        if "value_hash" in changes:
            _check_contact_free(contact.customer, changes["value_hash"], contact.pk)
        if changes.get("is_primary"):
            Contact.objects.filter(customer=contact.customer).exclude(pk=contact.pk).update(
                is_primary=False
            )
        return update_with_audit(actor, contact, changes, AuditAction.CONTACT_UPDATED)


def remove_contact(actor: Principal, contact: Contact) -> None:
    delete_with_audit(actor, contact, AuditAction.CONTACT_REMOVED)


def confirm_contact(actor: Principal, contact: Contact, when: datetime | None = None) -> Contact:
    """Record that the customer confirmed this contact is still theirs (now, by default)."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        before = audit_snapshot(contact, ["last_confirmed_at"])
        contact.last_confirmed_at = when or timezone.now()
        contact.save(update_fields=["last_confirmed_at"])
        record_audit(
            actor,
            AuditAction.CONTACT_CONFIRMED,
            contact,
            before=before,
            after=audit_snapshot(contact, ["last_confirmed_at"]),
        )
    return contact
