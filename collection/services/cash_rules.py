"""The holiday cash rule (DOMAIN.md, Collection, Cash rules).

When the bank is closed (a weekend the tenant calendar does not make a working day, or a public
holiday), the cash a counter takes stays in the office until the next working day. So a cash
top-up of a prepaid account on such a day is capped a transaction (5,000.00 yuan by default)
and needs a supervisor's approval given beforehand; both are the tenant's policy
(``CollectionPolicy``). A make-up working Saturday (调休) is a working day: no rule applies.

An approval (``CashApproval``) names the account, the cashier, the business day and the most
the payment may be: the customer may bring less than announced, never more. A payment names it
(``cash_approval``) and uses it up: the approval row is locked, so two payments racing for one
approval get it once. Another cashier, another account, another day or a larger amount is
refused. An approval is given by a site manager of the account's site or a tenant
administrator, never for oneself.

Codes: ``holiday_cap`` (more than the cap), ``approval_required`` (no approval named),
``approval_invalid`` (the approval does not fit the payment or is used),
``approval_not_needed`` (named on a day or for an account the rule does not cover).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.runs.services import FourEyesError, refuse_integration, same_actor
from collection.models import CashApproval, Channel, CollectionPolicy, Payment
from collection.services.errors import field_error
from customers.models import Account, PaymentMode
from tenancy.audit import AuditAction, record_audit, update_with_audit
from tenancy.calendar import is_working_day
from tenancy.models import ActorKind, Tenant, User
from tenancy.money import Money
from tenancy.principal import Principal
from tenancy.roles import Role

SUPERVISORS = (Role.SITE_MANAGER, Role.TENANT_ADMIN)


def bank_closed(tenant: Tenant, day: date) -> bool:
    return not is_working_day(tenant, day)


def holiday_rule_applies(tenant: Tenant, account: Account, channel: str, day: date) -> bool:
    return (
        channel == Channel.COUNTER_CASH
        and account.payment_mode == PaymentMode.PREPAID
        and bank_closed(tenant, day)
    )


def check_holiday_cash(
    actor: Principal,
    account: Account,
    channel: str,
    amount: Decimal,
    day: date,
    approval_id: int | None,
) -> CashApproval | None:
    """Refuse a cash top-up the rule forbids; returns the approval it uses, locked (the caller
    marks it used with the payment, in the same transaction)."""
    tenant = actor.tenant
    assert tenant is not None
    if not holiday_rule_applies(tenant, account, channel, day):
        if approval_id is not None:
            raise field_error(
                "cash_approval",
                _("No approval is needed: the holiday cash rule does not apply to this payment."),
                "approval_not_needed",
            )
        return None
    policy = CollectionPolicy.for_tenant(tenant)
    if amount > policy.holiday_cash_cap:
        raise field_error(
            "amount",
            _("The bank is closed today: a cash top-up is at most %(cap)s yuan.")
            % {"cap": policy.holiday_cash_cap},
            "holiday_cap",
        )
    if approval_id is None:
        if policy.holiday_cash_approval:
            raise field_error(
                "cash_approval",
                _("The bank is closed today: a cash top-up needs a supervisor's approval."),
                "approval_required",
            )
        return None
    approval = CashApproval.objects.select_for_update().filter(pk=approval_id).first()
    fits = (
        approval is not None
        and approval.payment_id is None
        and approval.account_id == account.pk
        and same_actor(actor, ActorKind.STAFF, approval.cashier_id)
        and approval.business_day == day
        and amount <= approval.amount
    )
    if not fits:
        raise field_error(
            "cash_approval",
            _("The approval is used, or is for another account, cashier, day or a smaller "
              "amount."),
            "approval_invalid",
        )  # fmt: skip
    return approval


def use_approval(approval: CashApproval | None, payment: Payment, now: datetime) -> None:
    if approval is not None:
        CashApproval.objects.filter(pk=approval.pk, payment=None).update(
            payment=payment, used_at=now
        )


def grant_cash_approval(
    actor: Principal,
    *,
    account: Account,
    cashier: User,
    amount: Decimal,
    business_day: date,
    reason: str,
) -> CashApproval:
    """A supervisor approves one cash top-up on a day the bank is closed (see the overview)."""
    reason = reason.strip()
    if not reason:
        raise field_error("reason", _("A reason is required."), "required")
    try:
        amount = Money(amount)
    except (TypeError, ValueError) as exc:
        raise field_error("amount", str(exc)) from exc
    if amount <= 0:
        raise field_error("amount", _("An approval is for more than 0 yuan."), "out_of_range")
    if same_actor(actor, ActorKind.STAFF, cashier.pk):
        raise FourEyesError(_("Nobody approves their own holiday cash."))
    refuse_integration(actor)
    if not actor.site_scope(SUPERVISORS).allows(account.site_id):
        raise PermissionDenied(
            _("Holiday cash is approved by a site manager of the account's site or a tenant "
              "administrator.")
        )  # fmt: skip
    tenant = actor.tenant
    assert tenant is not None
    if account.payment_mode != PaymentMode.PREPAID:
        raise field_error(
            "account", _("The holiday cash rule is for prepaid top-ups."), "not_prepaid"
        )
    if business_day < timezone.localdate(timezone=tenant.zone):
        raise field_error("business_day", _("The day is past."), "past")
    if not bank_closed(tenant, business_day):
        raise field_error(
            "business_day",
            _("The bank is open that day: no approval is needed."),
            "approval_not_needed",
        )
    policy = CollectionPolicy.for_tenant(tenant)
    if amount > policy.holiday_cash_cap:
        raise field_error(
            "amount",
            _("A cash top-up when the bank is closed is at most %(cap)s yuan.")
            % {"cap": policy.holiday_cash_cap},
            "holiday_cap",
        )
    if not Principal.for_user(cashier).site_scope((Role.CASHIER,)).allows(account.site_id):
        raise field_error(
            "cashier", _("This person takes no payments at the account's site."), "not_cashier"
        )
    with transaction.atomic():
        approval = CashApproval.objects.create(
            tenant=tenant, site_id=account.site_id, account=account, cashier=cashier,
            cashier_label=cashier.label[:200], amount=amount, business_day=business_day,
            reason=reason[:300], actor_kind=actor.kind, actor_id=actor.id,
            actor_label=actor.label[:200],
        )  # fmt: skip
        record_audit(
            actor, AuditAction.CASH_APPROVAL_GRANTED, approval,
            after={"account": account.number, "cashier": cashier.label, "amount": amount,
                   "business_day": business_day, "reason": reason},
        )  # fmt: skip
    return approval


def update_collection_policy(
    actor: Principal, policy: CollectionPolicy, changes: dict[str, Any]
) -> CollectionPolicy:
    if "holiday_cash_cap" in changes and changes["holiday_cash_cap"] <= 0:
        raise ValidationError({"holiday_cash_cap": [_("The cap is more than 0 yuan.")]})
    return update_with_audit(actor, policy, changes, AuditAction.COLLECTION_POLICY_UPDATED)
