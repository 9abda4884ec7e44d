"""The permission matrix: which roles may do what, as data.

``MATRIX[resource][action]`` is the set of roles allowed. The API's permission class, the
generated role tests, the OpenAPI descriptions and the README's table all read it, so there is
one place to change what a role may do.

Actions: ``view`` (GET), ``add`` (POST to a list), ``change`` (PUT, PATCH), ``delete``
(DELETE), plus named actions of a resource (``reveal``, ``unlock``…). A role held for listed
sites allows the action on those sites' objects only. Writes to tenant-wide resources (those
that belong to no site) need the role for all sites.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission

from tenancy.roles import ALL_ROLES, Role

if TYPE_CHECKING:
    from rest_framework.request import Request

ADMIN = Role.TENANT_ADMIN
HQ = Role.HQ_FINANCE
MANAGER = Role.SITE_MANAGER
READER = Role.METER_READER
VERIFIER = Role.VERIFIER
CASHIER = Role.CASHIER
COLLECTOR = Role.COLLECTOR
INSPECTOR = Role.INSPECTOR


def roles(*granted: str) -> frozenset[str]:
    return frozenset(granted)


EVERYONE = ALL_ROLES
SITE_ADMINS = roles(ADMIN, MANAGER)

MATRIX: dict[str, dict[str, frozenset[str]]] = {
    "tenant": {"view": EVERYONE, "change": roles(ADMIN)},
    "sites": {
        "view": EVERYONE,
        "add": roles(ADMIN),
        "change": roles(ADMIN),
        "delete": roles(ADMIN),
    },
    "transformer_areas": {
        "view": EVERYONE,
        "add": SITE_ADMINS,
        "change": SITE_ADMINS,
        "delete": SITE_ADMINS,
    },
    "calendar": {
        "view": EVERYONE,
        "add": roles(ADMIN),
        "change": roles(ADMIN),
        "delete": roles(ADMIN),
    },
    "staff": {
        "view": roles(ADMIN, MANAGER, INSPECTOR),
        "add": roles(ADMIN),
        "change": roles(ADMIN),
        "delete": roles(ADMIN),
        "unlock": roles(ADMIN),
        "reset_second_factor": roles(ADMIN),
    },
    "api_clients": {
        "view": roles(ADMIN, INSPECTOR),
        "add": roles(ADMIN),
        "change": roles(ADMIN),
        "delete": roles(ADMIN),
        "rotate": roles(ADMIN),
    },
    "audit_events": {"view": roles(ADMIN, INSPECTOR)},
    "customers": {
        "view": EVERYONE - {READER},
        "add": roles(ADMIN, MANAGER, CASHIER),
        "change": roles(ADMIN, MANAGER, CASHIER),
        "reveal": roles(ADMIN, MANAGER, CASHIER, COLLECTOR),
        # Finding a customer by identity number is a use of it: the roles that may see it.
        "search_pii": roles(ADMIN, MANAGER, CASHIER, COLLECTOR),
    },
    "accounts": {
        "view": EVERYONE,
        "add": SITE_ADMINS,
        "change": SITE_ADMINS,
    },
    "premises": {
        "view": EVERYONE,
        "add": SITE_ADMINS,
        "change": SITE_ADMINS,
        "delete": SITE_ADMINS,
    },
    "contacts": {
        "view": EVERYONE - {READER},
        "add": roles(ADMIN, MANAGER, CASHIER, COLLECTOR),
        "change": roles(ADMIN, MANAGER, CASHIER, COLLECTOR),
        "delete": roles(ADMIN, MANAGER, CASHIER, COLLECTOR),
        "confirm": roles(ADMIN, MANAGER, CASHIER, COLLECTOR),
        # Finding a contact by mobile number (the counter finds a customer by phone).
        "search_pii": roles(ADMIN, MANAGER, CASHIER, COLLECTOR),
    },
}

MATRIX.update(
    {
        "gateways": {
            "view": EVERYONE,
            "add": SITE_ADMINS,
            "change": SITE_ADMINS,
            "delete": SITE_ADMINS,
            "health": EVERYONE,
        },
        "meters": {
            "view": EVERYONE,
            "add": SITE_ADMINS,
            "change": SITE_ADMINS,
            "import": SITE_ADMINS,
            "replace": roles(ADMIN, MANAGER, READER),
        },
        "meter_profiles": {"view": EVERYONE},
        "readings": {
            "view": EVERYONE,
            "add": roles(ADMIN, MANAGER, READER),
            "ingest": roles(ADMIN, MANAGER, READER),
            "completeness": EVERYONE,
        },
        "meter_events": {"view": EVERYONE},
        "meter_commands": {"view": EVERYONE, "add": roles(ADMIN, MANAGER, COLLECTOR)},
        "verification": {
            "view": roles(ADMIN, HQ, MANAGER, VERIFIER, INSPECTOR),
            "approve": roles(ADMIN, VERIFIER),
            "edit": roles(ADMIN, VERIFIER),
            "estimate": roles(ADMIN, VERIFIER),
        },
        "corrections": {
            "view": roles(ADMIN, HQ, MANAGER, VERIFIER, INSPECTOR),
            "add": roles(ADMIN, VERIFIER),
            "approve": roles(ADMIN, VERIFIER),
        },
        "periods": {"view": EVERYONE, "compute": roles(ADMIN, VERIFIER)},
        "line_losses": {"view": roles(ADMIN, HQ, MANAGER, VERIFIER, INSPECTOR)},
        "verification_settings": {
            "view": roles(ADMIN, HQ, MANAGER, VERIFIER, INSPECTOR),
            "change": roles(ADMIN),
        },
    }
)

BILLING_STAFF = roles(ADMIN, HQ, MANAGER, VERIFIER, INSPECTOR)
MATRIX.update(
    {
        "tariffs": {
            "view": EVERYONE,
            "add": roles(ADMIN, HQ),
            "change": roles(ADMIN, HQ),
            "delete": roles(ADMIN, HQ),
        },
        "tariff_assignments": {
            "view": EVERYONE,
            "add": roles(ADMIN, HQ),
            "change": roles(ADMIN, HQ),
        },
        "common_areas": {"view": EVERYONE, "add": SITE_ADMINS},
        "billing_settings": {"view": BILLING_STAFF | roles(CASHIER), "change": roles(ADMIN)},
        "bill_runs": {
            "view": BILLING_STAFF,
            "add": roles(ADMIN, VERIFIER),
            "approve": roles(ADMIN, VERIFIER),
        },
        "bills": {
            "view": EVERYONE - {READER},
            "approve": roles(ADMIN, VERIFIER),
            "correct": roles(ADMIN, VERIFIER),
        },
        "flagged_bills": {"view": BILLING_STAFF, "approve": roles(ADMIN, VERIFIER)},
        "ledger": {"view": roles(ADMIN, HQ, MANAGER, CASHIER, INSPECTOR)},
        "prepaid_charges": {"view": EVERYONE - {READER}, "run": roles(ADMIN)},
        "opening_balances": {"view": BILLING_STAFF | roles(CASHIER), "import": roles(ADMIN)},
    }
)

INSPECTION_VIEWERS = roles(ADMIN, HQ, MANAGER, INSPECTOR)
MATRIX.update(
    {
        # 稽查: samples drawn for re-check and the findings recorded on them. The person a
        # finding is addressed to sees it among their own findings and acknowledges it, whatever
        # their role ("own", "acknowledge": the service checks it is theirs).
        "inspections": {
            "view": INSPECTION_VIEWERS,
            "add": roles(ADMIN, INSPECTOR),
            "record": roles(ADMIN, INSPECTOR),
            "own": EVERYONE,
            "acknowledge": EVERYONE,
        },
        "kpis": {"view": INSPECTION_VIEWERS},
    }
)

COLLECTION_READERS = roles(ADMIN, HQ, MANAGER, CASHIER, COLLECTOR, INSPECTOR)
REFUND_PAYERS = roles(ADMIN, HQ, MANAGER, CASHIER)
MATRIX.update(
    {
        # 收: cashiers take counter payments; banks, online providers and terminals are API
        # clients holding the cashier role, and take the bank, online and terminal channels
        # (the service tells them apart). A supervisor reverses on the payment's business day,
        # finance on any day; never who took it (the service checks both).
        "payments": {
            "view": COLLECTION_READERS,
            "add": roles(CASHIER),
            "reverse": roles(ADMIN, HQ, MANAGER),
            "due": COLLECTION_READERS,
        },
        # Failed attempts, for finance to trace; a bank reports a rejected payment here.
        "payment_attempts": {"view": roles(ADMIN, HQ, MANAGER, INSPECTOR), "add": roles(CASHIER)},
        # A receipt's original is printed once and recorded; later prints are reprints (重打).
        "receipts": {
            "view": COLLECTION_READERS,
            "print": roles(ADMIN, MANAGER, CASHIER),
            "reprint": roles(ADMIN, MANAGER, CASHIER),
        },
        # 日结: a cashier opens and closes their own shift (in their absence a supervisor
        # counts and closes it; the service checks who); a supervisor (a site manager of the
        # shift's site, a tenant admin) approves or rejects a counted difference, never of
        # their own shift or count. Cash goes to the bank by its cashier
        # or a supervisor on their behalf. Holiday cash is approved by a supervisor; the
        # policy (cap, approval needed) is the tenant admin's.
        "shifts": {
            "view": roles(ADMIN, HQ, MANAGER, CASHIER, INSPECTOR),
            "add": roles(CASHIER),
            "close": roles(ADMIN, MANAGER, CASHIER),
            "approve": roles(ADMIN, MANAGER),
            "reject": roles(ADMIN, MANAGER),
        },
        "cash_handovers": {
            "view": roles(ADMIN, HQ, MANAGER, CASHIER, INSPECTOR),
            "add": roles(ADMIN, MANAGER, CASHIER),
        },
        "cash_approvals": {
            "view": roles(ADMIN, HQ, MANAGER, CASHIER, INSPECTOR),
            "add": roles(ADMIN, MANAGER),
        },
        "collection_policy": {"view": COLLECTION_READERS, "change": roles(ADMIN)},
        # Deposits: the policy is the tenant administrator's; cashiers take deposits at the
        # counter. Refunds: requested by the counter or its supervisors, approved (or rejected)
        # by a supervisor or finance, never the requester (the service checks it), paid by the
        # counter (cash) or finance (transfers). Whoever pays an approved transfer may reveal the
        # customer's bank account it goes to (audited; masked everywhere else). Closing an
        # account (销户) is a supervisor's, and so is cancelling a closing that waits.
        "deposit_policies": {"view": COLLECTION_READERS, "add": roles(ADMIN)},
        "deposits": {
            "view": COLLECTION_READERS,
            "add": roles(CASHIER),
            "print": roles(ADMIN, MANAGER, CASHIER),
            "reprint": roles(ADMIN, MANAGER, CASHIER),
        },
        "refunds": {
            "view": COLLECTION_READERS,
            "add": roles(ADMIN, HQ, MANAGER, CASHIER),
            "approve": roles(ADMIN, HQ, MANAGER),
            "pay": REFUND_PAYERS,
            "reveal": REFUND_PAYERS,
        },
        "account_closings": {
            "view": COLLECTION_READERS,
            "add": roles(ADMIN, MANAGER),
            "close": roles(ADMIN, MANAGER),
            "cancel": roles(ADMIN, MANAGER),
        },
        # 充值卡: a tenant administrator generates a batch, downloads its PINs once (the
        # service checks it is the one who generated it), releases it for sale and voids
        # cards; cashiers redeem cards at the counter as payments.
        "voucher_batches": {
            "view": roles(ADMIN, HQ, INSPECTOR),
            "add": roles(ADMIN),
            "download_pins": roles(ADMIN),
            "release": roles(ADMIN),
            "void": roles(ADMIN),
        },
        "voucher_cards": {
            "view": COLLECTION_READERS,
            "void": roles(ADMIN),
            "unlock": roles(ADMIN),
        },
        "voucher_redemptions": {"view": COLLECTION_READERS, "add": roles(CASHIER)},
    }
)

# Actions that move money or approve what does (a bill run, a bill, a credit or re-bill, a
# payment and its reversal; refunds and waivers come with them): the staff who may take any of
# them, and tenant administrators, sign in with a second factor (``tenancy.second_factor``).
MONEY_ACTIONS = {
    ("bill_runs", "approve"),
    ("bills", "approve"),
    ("bills", "correct"),
    ("flagged_bills", "approve"),
    ("prepaid_charges", "run"),
    ("payments", "add"),
    ("payments", "reverse"),
    ("shifts", "approve"),
    ("cash_handovers", "add"),
    ("cash_approvals", "add"),
    ("deposits", "add"),
    ("refunds", "add"),
    ("refunds", "approve"),
    ("refunds", "pay"),
    ("account_closings", "add"),
    ("account_closings", "close"),
    ("voucher_batches", "release"),
    ("voucher_batches", "void"),
    ("voucher_cards", "void"),
    ("voucher_redemptions", "add"),
}


def second_factor_roles() -> frozenset[str]:
    held = {role for resource, action in MONEY_ACTIONS for role in MATRIX[resource][action]}
    return frozenset(held | {ADMIN})


DRF_ACTIONS = {
    "list": "view",
    "retrieve": "view",
    "metadata": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


METHOD_ACTIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def allowed_roles(resource: str, action: str) -> frozenset[str]:
    try:
        return MATRIX[resource][action]
    except KeyError as exc:
        raise ImproperlyConfigured(
            f"The permission matrix has no entry for {resource}.{action}"
        ) from exc


def method_not_routed(view: Any) -> bool:
    action_map = getattr(view, "action_map", None)
    return (
        action_map is not None
        and view.request.method.lower() not in action_map
        and (view.request.method != "OPTIONS")
    )


def permission_action_of(view: Any) -> str:
    """The matrix action a view's current DRF action maps to."""
    if getattr(view, "permission_action", None):
        return view.permission_action
    drf_action = getattr(view, "action", None)
    if drf_action in DRF_ACTIONS:
        return DRF_ACTIONS[drf_action]
    if getattr(view, "permission_by_method", False):
        return METHOD_ACTIONS[view.request.method]
    raise ImproperlyConfigured(
        f"{type(view).__name__}.{drf_action} needs permission_action= in its @action"
    )


class MatrixPermission(BasePermission):
    """Allows a request when the principal holds a role the matrix lists for the action.

    Leaves ``request.site_scope`` for the base viewset: the sites on which the principal holds
    such a role.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = getattr(request, "principal", None)
        if principal is None or principal.tenant is None:
            return False
        if method_not_routed(view):
            return True  # DRF answers 405 for a method the route does not have
        action = permission_action_of(view)
        scope = principal.site_scope(allowed_roles(view.permission_resource, action))
        request.site_scope = scope  # type: ignore[attr-defined]  # read by the base viewset
        if not scope.allows_any:
            return False
        tenant_wide = getattr(view, "tenant_wide", False)
        return not (tenant_wide and action != "view" and not scope.all_sites)


def role_labels(role_names: frozenset[str]) -> list[str]:
    return [role.value for role in Role if role.value in role_names]


def matrix_markdown() -> str:
    """The matrix as a Markdown table, one row per resource and action (the README has it)."""
    header_roles = [role.value for role in Role]
    lines = [
        "| permission | " + " | ".join(header_roles) + " |",
        "| --- | " + " | ".join(":-:" for _ in header_roles) + " |",
    ]
    for resource, actions in MATRIX.items():
        for action, granted in actions.items():
            cells = ["✓" if role in granted else "" for role in header_roles]
            lines.append(f"| `{resource}.{action}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
