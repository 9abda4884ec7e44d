"""Write actions on tariffs, their versions and assignments, common areas and the billing
settings. A tariff version is checked by ``TariffSpec.parse`` before it is stored, and is never
changed once a bill was priced with it: a new version with a later date replaces it.

A new version from a day that issued bills or prepaid charges of the tariff already cover is
*backdated*: they keep the prices they were priced with (re-pricing an issued bill is a
re-bill, which a second person approves), so it is refused until confirmed, and the audit
event says how many bills and prepaid charges it left at the old prices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.models import (
    Bill,
    BillingSettings,
    BillKind,
    BillState,
    CommonArea,
    CommonAreaMember,
    OpeningBalance,
    PrepaidCharge,
    Tariff,
    TariffAssignment,
    TariffVersion,
)
from billing.tariffs.pricing import Assignment
from billing.tariffs.spec import TariffSpec, TariffSpecError
from customers.models import Account, PaymentMode
from tenancy.audit import (
    AuditAction,
    audit_snapshot,
    create_with_audit,
    record_audit,
    update_with_audit,
)
from tenancy.batches import all_or_none
from tenancy.models import Site
from tenancy.principal import Principal
from tenancy.wording import join_sentences


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


class BackdatedVersionError(ValidationError):
    """A version from a day that issued bills or prepaid charges of the tariff cover, not
    confirmed: ``periods`` holds how many such bills each period has, ``prepaid_charges`` how
    many prepaid charges there are (code ``backdated``)."""

    def __init__(
        self, effective_from: date, periods: dict[str, int], prepaid_charges: int = 0
    ) -> None:
        self.periods = periods
        self.count = sum(periods.values())
        self.prepaid_charges = prepaid_charges
        day = effective_from.isoformat()
        parts = []
        if self.count:
            listed = ", ".join(
                _("%(period)s: %(count)s") % {"period": period, "count": count}
                for period, count in periods.items()
            )
            parts.append(
                ngettext(
                    "From %(day)s this version replaces the prices of %(count)s issued bill "
                    "(%(periods)s). It keeps the prices it was issued with: issued bills are "
                    "not re-priced automatically; correct it with a re-bill, which a second "
                    "person approves.",
                    "From %(day)s this version replaces the prices of %(count)s issued bills "
                    "(%(periods)s). They keep the prices they were issued with: issued bills "
                    "are not re-priced automatically; correct them with re-bills, which a "
                    "second person approves.",
                    self.count,
                )
                % {"day": day, "count": self.count, "periods": listed}
            )
        if prepaid_charges:
            parts.append(
                ngettext(
                    "From %(day)s it also covers %(count)s prepaid charge already made, which "
                    "keeps the price it was charged at.",
                    "From %(day)s it also covers %(count)s prepaid charges already made, which "
                    "keep the prices they were charged at.",
                    prepaid_charges,
                )
                % {"day": day, "count": prepaid_charges}
            )
        parts.append(_("Confirm to add the version anyway."))
        message = join_sentences(parts)
        super().__init__({"effective_from": [ValidationError(message, code="backdated")]})


def _month_after(day: date) -> str:
    return f"{day.year + 1}-01" if day.month == 12 else f"{day.year}-{day.month + 1:02}"


def _priced_by(version_ids: Sequence[int]) -> Q:
    """Bills whose ``tariff_versions`` hold any of ``version_ids``."""
    priced = Q()
    for version_id in version_ids:
        priced |= Q(tariff_versions__includes=version_id)
    return priced


def bills_left_at_old_prices(tariff: Tariff, effective_from: date) -> dict[str, int]:
    """The issued bills (neither void nor credited) that a new version of ``tariff`` from
    ``effective_from`` would leave at the old prices, counted by period: those that a version
    of the tariff in force before that day priced (each bill keeps the versions that priced it)
    and that have a day from ``effective_from`` on, before the tariff's next version. Any such
    version, not only the one in force on that day: after a first backdated version the bills
    still carry the version it replaced.

    Counted from the site-period index alone, which holds the bills' days and versions: only
    the periods that can hold such a day (from the day's month on, since a period ends before
    its month's reading day, and before a next version up to the month after it starts). A
    credit note carries the days and versions of the bill it reverses, so the credited bills
    are netted out by counting the issued credit notes that match too."""
    versions = list(tariff.versions.order_by("effective_from").values_list("pk", "effective_from"))
    earlier = [pk for pk, starts in versions if starts < effective_from]
    if not earlier:
        return {}  # no version priced those days: no bill has them
    later = [starts for _pk, starts in versions if starts > effective_from]
    bills = Bill.objects.filter(
        site_id__any=list(Site.objects.values_list("pk", flat=True)),
        period__gte=f"{effective_from:%Y-%m}",
        state=BillState.ISSUED,
        ends_on__gte=effective_from,
    ).filter(_priced_by(earlier))
    if later:
        # A bill from the next version's day on names the earlier version only when the next
        # one was added since, backdated over it: none of its days is the new version's.
        bills = bills.filter(period__lte=_month_after(later[0]), starts_on__lt=later[0])
    counted = (
        bills.values("period")
        .annotate(
            live=Count("kind", filter=Q(kind__in=[BillKind.BILL, BillKind.REBILL]))
            - Count("kind", filter=Q(kind=BillKind.CREDIT_NOTE))
        )
        .order_by("period")
    )
    return {row["period"]: row["live"] for row in counted if row["live"] > 0}


def prepaid_charges_left_at_old_prices(tariff: Tariff, effective_from: date) -> int:
    """The prepaid charges that a new version of ``tariff`` from ``effective_from`` would leave
    at the old prices: those a version of the tariff in force before that day priced, with a
    reading from that day on and, when the tariff has a later version, one before its day.
    Read from the ``prepaid_charge_to`` index (its last reading time, versions included)."""
    versions = list(tariff.versions.order_by("effective_from").values_list("pk", "effective_from"))
    earlier = [pk for pk, starts in versions if starts < effective_from]
    if not earlier:
        return 0
    zone = tariff.tenant.zone
    charges = PrepaidCharge.objects.filter(
        to_taken_at__gte=timezone.make_aware(datetime.combine(effective_from, time.min), zone)
    ).filter(_priced_by(earlier))
    later = [starts for _pk, starts in versions if starts > effective_from]
    if later:
        charges = charges.filter(
            from_taken_at__lt=timezone.make_aware(datetime.combine(later[0], time.min), zone)
        )
    return charges.count()


def add_tariff_version(
    actor: Principal,
    tariff: Tariff,
    *,
    effective_from: date,
    spec: Any,
    note: str = "",
    confirm_backdated: bool = False,
) -> TariffVersion:
    """Add a version from a date. Every problem of the specification is named at once (each
    with its path), with a day that has a version already. A version from a day that issued
    bills of the tariff cover is refused (``BackdatedVersionError``) unless confirmed; the
    audit event then records how many issued bills of which periods keep the old prices."""
    errors: dict[str, list[str]] = {}
    try:
        TariffSpec.parse(spec)
    except TariffSpecError as exc:
        errors["spec"] = exc.messages
    with transaction.atomic():
        if TariffVersion.objects.filter(tariff=tariff, effective_from=effective_from).exists():
            errors["effective_from"] = [_("The tariff has a version from this date already.")]
        if errors:
            raise ValidationError(errors)
        backdated = bills_left_at_old_prices(tariff, effective_from)
        prepaid = prepaid_charges_left_at_old_prices(tariff, effective_from)
        if (backdated or prepaid) and not confirm_backdated:
            raise BackdatedVersionError(effective_from, backdated, prepaid)
        version = TariffVersion.objects.create(
            tenant=tariff.tenant,
            tariff=tariff,
            effective_from=effective_from,
            spec=spec,
            note=note,
            created_by_label=actor.label[:200],
        )
        after: dict[str, Any] = {
            "tariff": tariff.pk,
            "effective_from": effective_from,
            "spec": spec,
        }
        if backdated:
            after["backdated_over_issued_bills"] = sum(backdated.values())
            after["backdated_periods"] = backdated
        if prepaid:
            after["backdated_over_prepaid_charges"] = prepaid
        record_audit(actor, AuditAction.TARIFF_VERSION_ADDED, version, after=after)
    return version


class VersionNotRemovableError(ValidationError):
    """A version that priced a bill or a prepaid charge, or is in effect already (codes
    ``version_priced`` and ``version_in_effect``): it stays, and a new version replaces it."""


def removable(version: TariffVersion) -> bool:
    """Whether ``delete_tariff_version`` would remove the version (for showing the action)."""
    try:
        _check_removable(version)
    except VersionNotRemovableError:
        return False
    return True


def _check_removable(version: TariffVersion) -> None:
    tenant = version.tariff.tenant
    if version.effective_from <= tenant.local_today():
        raise VersionNotRemovableError(
            _("The version is in effect since %(day)s: add a new version to change the prices.")
            % {"day": version.effective_from.isoformat()},
            code="version_in_effect",
        )
    first_moment = timezone.make_aware(
        datetime.combine(version.effective_from, time.min), tenant.zone
    )
    if (
        Bill.objects.filter(tariff_versions__includes=version.pk).exists()
        or PrepaidCharge.objects.filter(to_taken_at__gte=first_moment)
        .filter(tariff_versions__includes=version.pk)
        .exists()
    ):
        raise VersionNotRemovableError(
            _("Bills or prepaid charges were priced with this version: it stays."),
            code="version_priced",
        )


def delete_tariff_version(actor: Principal, version: TariffVersion, reason: str) -> None:
    """Remove a mistyped version before it takes effect: only while its first day is after
    today (in the tenant's zone) and no bill (a draft included) or prepaid charge was priced
    with it. The audit event keeps its content and the reason."""
    with transaction.atomic():
        Tariff.objects.select_for_update().get(pk=version.tariff_id)
        _check_removable(version)
        record_audit(
            actor,
            AuditAction.TARIFF_VERSION_REMOVED,
            version,
            before={
                "tariff": version.tariff_id,
                "effective_from": version.effective_from,
                "spec": version.spec,
                "note": version.note,
                "created_by_label": version.created_by_label,
            },
            after={"reason": reason},
        )
        version.delete()


def assign_tariff(
    actor: Principal,
    tariff: Tariff,
    *,
    effective_from: date,
    effective_to: date | None = None,
    account: Account | None = None,
    customer_class: str = "",
    sites: Sequence[Site] = (),
) -> TariffAssignment:
    """Assign a tariff to one account, or to a customer class at every site or at the given
    sites only (which wins there over the every-site assignment); spans of the same target may
    not overlap (two class assignments overlap where their sites do)."""
    if (account is None) == (not customer_class):
        raise ValidationError(_("Assign a tariff to one account or to one customer class."))
    if account is not None and sites:
        raise ValidationError({"sites": _("An account's assignment follows its own site.")})
    if effective_to is not None and effective_to <= effective_from:
        raise ValidationError({"effective_to": _("The end must come after the start.")})
    if account is not None and account.utility != tariff.utility:
        raise ValidationError({"tariff": _("The tariff is for another utility.")})
    site_ids = {site.pk for site in sites}
    with transaction.atomic():
        target = {"account": account} if account else {"account__isnull": True}
        same = TariffAssignment.objects.select_for_update().filter(
            **target, customer_class=customer_class, tariff__utility=tariff.utility
        )
        limits = _site_limits([other.pk for other in same])
        for other in same:
            theirs = limits.get(other.pk, set())
            if bool(theirs) != bool(site_ids) or (site_ids and not site_ids & theirs):
                continue  # every site vs some sites, or other sites: no overlap
            ends = other.effective_to or date.max
            if other.effective_from < (effective_to or date.max) and effective_from < ends:
                raise ValidationError(
                    _("It overlaps the assignment of tariff %(code)s from %(start)s.")
                    % {"code": other.tariff.code, "start": other.effective_from}
                )
        assignment = TariffAssignment.objects.create(
            tenant=tariff.tenant,
            tariff=tariff,
            account=account,
            customer_class=customer_class,
            effective_from=effective_from,
            effective_to=effective_to,
        )
        if site_ids:
            assignment.sites.set(sorted(site_ids))
        after = audit_snapshot(assignment)
        after["sites"] = sorted(site_ids)
        record_audit(actor, AuditAction.TARIFF_ASSIGNED, assignment, after=after)
    return assignment


def assign_tariff_to_accounts(
    actor: Principal,
    tariff: Tariff,
    accounts: Sequence[Account],
    *,
    effective_from: date,
    effective_to: date | None = None,
) -> list[TariffAssignment]:
    """Assign a tariff to many accounts at once: all or none, every account at fault named
    (another utility, an overlapping assignment of its own)."""
    return all_or_none(
        accounts,
        lambda account: assign_tariff(
            actor, tariff, account=account, effective_from=effective_from,
            effective_to=effective_to,
        ),
        lambda account: account.number,
        "accounts",
    )  # fmt: skip


def _site_limits(assignment_ids: Sequence[int]) -> dict[int, set[int]]:
    limits: dict[int, set[int]] = {}
    through = TariffAssignment.sites.through.objects.filter(tariffassignment_id__in=assignment_ids)
    for assignment_id, site_id in through.values_list("tariffassignment_id", "site_id"):
        limits.setdefault(assignment_id, set()).add(site_id)
    return limits


def class_assignments(
    site_id: int, customer_class: str | None = None, utility: str | None = None
) -> list[Assignment]:
    """The customer-class assignments that apply at a site: those for every site and those
    limited to it (which win there), each with its tariff's utility."""
    rows = TariffAssignment.objects.filter(account__isnull=True).select_related("tariff")
    if customer_class is not None:
        rows = rows.filter(customer_class=customer_class)
    if utility is not None:
        rows = rows.filter(tariff__utility=utility)
    found = list(rows)
    limits = _site_limits([a.pk for a in found])
    return [
        Assignment(
            a.tariff_id, None, a.customer_class, a.effective_from, a.effective_to,
            tuple(sorted(limits.get(a.pk, ()))), a.tariff.utility,
        )
        for a in found
        if not limits.get(a.pk) or site_id in limits[a.pk]
    ]  # fmt: skip


def account_assignments(account_ids: Sequence[int]) -> dict[int, list[Assignment]]:
    """Each account's own assignments (which win over its class's)."""
    own: dict[int, list[Assignment]] = {}
    for a in TariffAssignment.objects.filter(account_id__any=list(account_ids)):
        assert a.account_id is not None  # filtered on it
        own.setdefault(a.account_id, []).append(
            Assignment(a.tariff_id, a.account_id, "", a.effective_from, a.effective_to)
        )
    return own


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
    """Change the billing settings. The go-live date is fixed once anything was billed or an
    opening balance imported: the order of every account's periods and the tier year of the
    openings hang on it."""
    moved = "go_live_on" in changes and changes["go_live_on"] != settings.go_live_on
    if moved and (Bill.objects.exists() or OpeningBalance.objects.exists()):
        raise ValidationError(
            {"go_live_on": [_("The go-live date is fixed once bills are drafted or opening "
                              "balances imported.")]},
            code="go_live_fixed",
        )  # fmt: skip
    return update_with_audit(actor, settings, changes, AuditAction.BILLING_SETTINGS_UPDATED)
