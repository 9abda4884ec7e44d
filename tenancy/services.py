"""Write actions of the tenancy app: tenant settings, sites, transformer areas, the calendar,
staff users and API clients with their role grants.

Each action takes the acting principal first, runs in one transaction, checks its rules and
leaves an audit event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from axes.utils import reset as axes_reset
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tenancy.audit import (
    AuditAction,
    audit_snapshot,
    create_with_audit,
    delete_with_audit,
    record_audit,
    update_with_audit,
)
from tenancy.models import (
    ApiClient,
    CalendarDay,
    CalendarDayKind,
    RoleGrant,
    Site,
    Tenant,
    TransformerArea,
    User,
)
from tenancy.principal import Principal, forget_tokens
from tenancy.roles import Role
from tenancy.tokens import hash_token, new_token, token_prefix

SATURDAY = 5  # date.weekday()


@dataclass(frozen=True)
class GrantSpec:
    """A role for one site, or for every site when ``site`` is ``None``."""

    role: str
    site: Site | None = None


def update_tenant(actor: Principal, tenant: Tenant, changes: dict[str, Any]) -> Tenant:
    """An earliest reading day after today (in the tenant's zone) would refuse every reading,
    the meters' and the manual ones, until that day: it is refused."""
    earliest = changes.get("earliest_reading_on")
    if earliest is not None and earliest > tenant.local_today():
        raise ValidationError(
            {"earliest_reading_on": [_("The earliest reading day cannot be after today.")]}
        )
    with transaction.atomic():
        tenant = update_with_audit(actor, tenant, changes, AuditAction.TENANT_UPDATED)
        forget_tokens(*ApiClient.objects.filter(tenant=tenant).values_list("key_hash", flat=True))
    return tenant


def create_site(actor: Principal, **fields: Any) -> Site:
    return create_with_audit(actor, Site, AuditAction.SITE_CREATED, **fields)


def update_site(actor: Principal, site: Site, changes: dict[str, Any]) -> Site:
    return update_with_audit(actor, site, changes, AuditAction.SITE_UPDATED)


def delete_site(actor: Principal, site: Site) -> None:
    """A site with transformer areas, premises or accounts is in use and stays (409)."""
    delete_with_audit(actor, site, AuditAction.SITE_DELETED)


def create_transformer_area(actor: Principal, **fields: Any) -> TransformerArea:
    return create_with_audit(actor, TransformerArea, AuditAction.TRANSFORMER_AREA_CREATED, **fields)


def update_transformer_area(
    actor: Principal, area: TransformerArea, changes: dict[str, Any]
) -> TransformerArea:
    return update_with_audit(actor, area, changes, AuditAction.TRANSFORMER_AREA_UPDATED)


def delete_transformer_area(actor: Principal, area: TransformerArea) -> None:
    delete_with_audit(actor, area, AuditAction.TRANSFORMER_AREA_DELETED)


def _check_calendar_day(day: date, kind: str) -> None:
    """A make-up working day (调休) moves work onto a weekend: a Saturday or a Sunday. A
    weekday is a working day already."""
    if kind == CalendarDayKind.WORKDAY and day.weekday() < SATURDAY:
        raise ValidationError(
            {"date": [_("A make-up working day is a Saturday or a Sunday.")]}, code="weekday"
        )


def create_calendar_day(actor: Principal, **fields: Any) -> CalendarDay:
    _check_calendar_day(fields["date"], fields["kind"])
    return create_with_audit(actor, CalendarDay, AuditAction.CALENDAR_DAY_CREATED, **fields)


def update_calendar_day(actor: Principal, day: CalendarDay, changes: dict[str, Any]) -> CalendarDay:
    _check_calendar_day(changes.get("date", day.date), changes.get("kind", day.kind))
    return update_with_audit(actor, day, changes, AuditAction.CALENDAR_DAY_UPDATED)


def delete_calendar_day(actor: Principal, day: CalendarDay) -> None:
    delete_with_audit(actor, day, AuditAction.CALENDAR_DAY_DELETED)


# --- role grants ----------------------------------------------------------------------------


def _grant_rows(grants: Iterable[RoleGrant]) -> list[dict[str, Any]]:
    return sorted(
        ({"role": grant.role, "site": grant.site_id} for grant in grants),
        key=lambda row: (row["role"], row["site"] or 0),
    )


def _check_grants(actor: Principal, grants: Sequence[GrantSpec]) -> None:
    seen: set[tuple[str, int | None]] = set()
    for grant in grants:
        if grant.role not in Role.values:
            raise ValidationError({"grants": _("Unknown role: %(role)s") % {"role": grant.role}})
        if grant.site is not None and grant.site.tenant_id != actor.tenant.pk:  # type: ignore[union-attr]
            raise ValidationError({"grants": _("Unknown site.")})
        key = (grant.role, grant.site.pk if grant.site else None)
        if key in seen:
            raise ValidationError({"grants": _("A role is granted twice for the same sites.")})
        seen.add(key)


def _replace_grants(actor: Principal, holder: dict[str, Any], grants: Sequence[GrantSpec]) -> None:
    _check_grants(actor, grants)
    if "api_client" in holder:
        forget_tokens(holder["api_client"].key_hash)
    RoleGrant.objects.filter(**holder).delete()
    RoleGrant.objects.bulk_create(
        [RoleGrant(tenant=actor.tenant, role=g.role, site=g.site, **holder) for g in grants]
    )


def _ensure_an_administrator_remains(actor: Principal) -> None:
    """The tenant keeps at least one active administrator for all sites."""
    remaining = RoleGrant.objects.filter(
        role=Role.TENANT_ADMIN, site__isnull=True, user__is_active=True
    )
    if not remaining.exists():
        raise ValidationError(
            {"grants": _("The tenant must keep an active administrator for all sites.")}
        )


# --- staff users ----------------------------------------------------------------------------


def _validate_new_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from exc


def create_staff(
    actor: Principal,
    *,
    username: str,
    password: str,
    grants: Sequence[GrantSpec],
    display_name: str = "",
    email: str = "",
) -> User:
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError({"username": _("This user name is taken.")})
        user = User(
            tenant=actor.tenant,
            username=username,
            display_name=display_name,
            email=email,
            is_staff=False,
        )
        _validate_new_password(password, user)
        user.set_password(password)
        user.full_clean()
        user.save()
        _replace_grants(actor, {"user": user}, grants)
        after = audit_snapshot(user, ["username", "display_name", "email", "is_active"])
        after["grants"] = _grant_rows(user.grants.all())
        record_audit(actor, AuditAction.STAFF_CREATED, user, after=after)
    return user


def update_staff(actor: Principal, user: User, changes: dict[str, Any]) -> User:
    """Change names, e-mail, active flag and (when given) replace the grants."""
    grants = changes.pop("grants", None)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        fields = ["display_name", "email", "is_active"]
        before = audit_snapshot(user, fields)
        before["grants"] = _grant_rows(user.grants.all())
        for name, value in changes.items():
            if name not in fields:
                raise ValidationError({name: _("This field cannot be changed here.")})
            setattr(user, name, value)
        user.full_clean()
        user.save(update_fields=fields)
        if grants is not None:
            _replace_grants(actor, {"user": user}, grants)
        _ensure_an_administrator_remains(actor)
        after = audit_snapshot(user, fields)
        after["grants"] = _grant_rows(user.grants.all())
        if after != before:
            record_audit(actor, AuditAction.STAFF_UPDATED, user, before=before, after=after)
    return user


def deactivate_staff(actor: Principal, user: User) -> None:
    """Staff are never deleted (the audit trail names them); they lose their login."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_active:
            return
        user.is_active = False
        user.save(update_fields=["is_active"])
        _ensure_an_administrator_remains(actor)
        record_audit(
            actor,
            AuditAction.STAFF_DEACTIVATED,
            user,
            before={"is_active": True},
            after={"is_active": False},
        )


def set_staff_password(actor: Principal, user: User, password: str) -> None:
    with transaction.atomic():
        _validate_new_password(password, user)
        user.set_password(password)
        user.save(update_fields=["password"])
        record_audit(actor, AuditAction.STAFF_PASSWORD_SET, user)


def unlock_staff(actor: Principal, user: User) -> int:
    """Lift a login lockout after repeated failed passwords; returns the attempts cleared."""
    with transaction.atomic():
        cleared = axes_reset(username=user.username)
        record_audit(actor, AuditAction.STAFF_UNLOCKED, user, after={"attempts_cleared": cleared})
    return cleared


# --- API clients ----------------------------------------------------------------------------


def issue_api_client(
    actor: Principal, *, name: str, grants: Sequence[GrantSpec]
) -> tuple[ApiClient, str]:
    """A new integration client and its token; the token is returned once and never again."""
    token = new_token()
    with transaction.atomic():
        client = ApiClient(
            tenant=actor.tenant,
            name=name,
            key_prefix=token_prefix(token),
            key_hash=hash_token(token),
        )
        client.full_clean()
        client.save()
        _replace_grants(actor, {"api_client": client}, grants)
        after = {"name": name, "grants": _grant_rows(client.grants.all())}
        record_audit(actor, AuditAction.API_CLIENT_CREATED, client, after=after)
    return client, token


def update_api_client(actor: Principal, client: ApiClient, changes: dict[str, Any]) -> ApiClient:
    grants = changes.pop("grants", None)
    with transaction.atomic():
        before = {"name": client.name, "grants": _grant_rows(client.grants.all())}
        if "name" in changes:
            client.name = changes.pop("name")
            client.full_clean()
            client.save(update_fields=["name"])
        if changes:
            raise ValidationError({next(iter(changes)): _("This field cannot be changed here.")})
        if grants is not None:
            _replace_grants(actor, {"api_client": client}, grants)
        after = {"name": client.name, "grants": _grant_rows(client.grants.all())}
        if after != before:
            record_audit(actor, AuditAction.API_CLIENT_UPDATED, client, before=before, after=after)
    return client


def revoke_api_client(actor: Principal, client: ApiClient) -> None:
    with transaction.atomic():
        if not client.is_active:
            return
        client.is_active = False
        client.revoked_at = timezone.now()
        client.save(update_fields=["is_active", "revoked_at"])
        forget_tokens(client.key_hash)
        record_audit(
            actor,
            AuditAction.API_CLIENT_REVOKED,
            client,
            before={"is_active": True},
            after={"is_active": False},
        )


def rotate_api_client_token(actor: Principal, client: ApiClient) -> str:
    """A new token for the client; the old one stops working at once."""
    if not client.is_active:
        raise ValidationError(_("A revoked client cannot get a new token."))
    token = new_token()
    with transaction.atomic():
        forget_tokens(client.key_hash)
        client.key_prefix = token_prefix(token)
        client.key_hash = hash_token(token)
        client.save(update_fields=["key_prefix", "key_hash"])
        record_audit(
            actor, AuditAction.API_CLIENT_TOKEN_ROTATED, client, after={"prefix": client.key_prefix}
        )
    return token
