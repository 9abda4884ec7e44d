"""Write actions on tariffs, their versions and assignments, common areas and the billing
settings. A tariff version is checked by ``TariffSpec.parse`` before it is stored, and is never
changed once a bill was priced with it: a new version with a later date replaces it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from billing.models import (
    BillingSettings,
    CommonArea,
    CommonAreaMember,
    Tariff,
    TariffAssignment,
    TariffVersion,
)
from billing.tariffs.spec import TariffSpec, TariffSpecError
from customers.models import Account, PaymentMode
from tenancy.audit import (
    AuditAction,
    audit_snapshot,
    create_with_audit,
    record_audit,
    update_with_audit,
)
from tenancy.models import Site
from tenancy.principal import Principal


def create_tariff(
    actor: Principal, *, code: str, name: str, utility: str, description: str = ""
) -> Tariff:
    return create_with_audit(
        actor,
        Tariff,
        AuditAction.TARIFF_CREATED,
        code=code,
        name=name,
        utility=utility,
        description=description,
    )


def update_tariff(actor: Principal, tariff: Tariff, changes: dict[str, Any]) -> Tariff:
    if "utility" in changes and changes["utility"] != tariff.utility and tariff.versions.exists():
        raise ValidationError({"utility": _("A tariff with versions keeps its utility.")})
    return update_with_audit(actor, tariff, changes, AuditAction.TARIFF_UPDATED)


def add_tariff_version(
    actor: Principal, tariff: Tariff, *, effective_from: date, spec: Any, note: str = ""
) -> TariffVersion:
    """Add a version from a date; the specification must parse (the error names the field)."""
    try:
        TariffSpec.parse(spec)
    except TariffSpecError as exc:
        raise ValidationError({"spec": exc.messages}) from exc
    with transaction.atomic():
        if TariffVersion.objects.filter(tariff=tariff, effective_from=effective_from).exists():
            raise ValidationError(
                {"effective_from": _("The tariff has a version from this date already.")}
            )
        version = TariffVersion.objects.create(
            tenant=tariff.tenant,
            tariff=tariff,
            effective_from=effective_from,
            spec=spec,
            note=note,
            created_by_label=actor.label[:200],
        )
        record_audit(
            actor,
            AuditAction.TARIFF_VERSION_ADDED,
            version,
            after={"tariff": tariff.pk, "effective_from": effective_from, "spec": spec},
        )
    return version


def assign_tariff(
    actor: Principal,
    tariff: Tariff,
    *,
    effective_from: date,
    effective_to: date | None = None,
    account: Account | None = None,
    customer_class: str = "",
) -> TariffAssignment:
    """Assign a tariff to one account or to a customer class; spans of the same target may not
    overlap."""
    if (account is None) == (not customer_class):
        raise ValidationError(_("Assign a tariff to one account or to one customer class."))
    if effective_to is not None and effective_to <= effective_from:
        raise ValidationError({"effective_to": _("The end must come after the start.")})
    if account is not None and account.utility != tariff.utility:
        raise ValidationError({"tariff": _("The tariff is for another utility.")})
    with transaction.atomic():
        target = {"account": account} if account else {"account__isnull": True}
        same = TariffAssignment.objects.select_for_update().filter(
            **target, customer_class=customer_class, tariff__utility=tariff.utility
        )
        for other in same:
            ends = other.effective_to or date.max
            if other.effective_from < (effective_to or date.max) and effective_from < ends:
                raise ValidationError(
                    _("It overlaps the assignment of tariff %(code)s from %(start)s.")
                    % {"code": other.tariff.code, "start": other.effective_from}
                )
        return create_with_audit(
            actor,
            TariffAssignment,
            AuditAction.TARIFF_ASSIGNED,
            tariff=tariff,
            account=account,
            customer_class=customer_class,
            effective_from=effective_from,
            effective_to=effective_to,
        )


def assign_tariff_from_api(actor: Principal, *, tariff: Tariff, **fields: Any) -> TariffAssignment:
    return assign_tariff(actor, tariff, **fields)


def end_tariff_assignment(
    actor: Principal, assignment: TariffAssignment, effective_to: date
) -> TariffAssignment:
    if effective_to <= assignment.effective_from:
        raise ValidationError({"effective_to": _("The end must come after the start.")})
    with transaction.atomic():
        before = audit_snapshot(assignment)
        assignment.effective_to = effective_to
        assignment.save(update_fields=["effective_to"])
        record_audit(
            actor,
            AuditAction.TARIFF_ASSIGNMENT_ENDED,
            assignment,
            before=before,
            after=audit_snapshot(assignment),
        )
    return assignment


def create_common_area(
    actor: Principal,
    *,
    site: Site,
    name: str,
    account: Account,
    method: str,
    members: Sequence[Account],
) -> CommonArea:
    """公摊: the common-area meter's account and the postpaid accounts that share it."""
    problems = []
    if account.site_id != site.pk:
        problems.append(_("The common-area account belongs to another site."))
    if account in members:
        problems.append(_("The common-area account cannot share in itself."))
    if any(m.site_id != site.pk or m.payment_mode != PaymentMode.POSTPAID for m in members):
        problems.append(_("Members must be postpaid accounts of the same site."))
    if method == "floor_area" and any(m.premise.floor_area is None for m in members):
        problems.append(_("Sharing by floor area needs every member's floor area."))
    if not members:
        problems.append(_("A common area needs at least one member."))
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        area = create_with_audit(
            actor,
            CommonArea,
            AuditAction.COMMON_AREA_CREATED,
            site=site,
            name=name,
            account=account,
            method=method,
        )
        CommonAreaMember.objects.bulk_create(
            [
                CommonAreaMember(tenant=site.tenant, common_area=area, account=member)
                for member in members
            ]
        )
    return area


def update_billing_settings(
    actor: Principal, settings: BillingSettings, changes: dict[str, Any]
) -> BillingSettings:
    return update_with_audit(actor, settings, changes, AuditAction.BILLING_SETTINGS_UPDATED)
