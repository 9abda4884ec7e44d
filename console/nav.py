"""The console's navigation: each entry names the page and the matrix permission that opens it,
so a person sees exactly the pages the server would let them open.

Page modules declare their entries in ``NAV`` (a list of :class:`Entry`); the sections appear in
the order of :data:`SECTIONS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from console.access import can

SECTIONS: dict[str, Promise] = {
    "overview": _("Overview"),
    "read": _("Read"),
    "verify": _("Verify"),
    "bill": _("Bill"),
    "collect": _("Collect"),
    "customers": _("Customers"),
    "inspect": _("Inspection"),
    "admin": _("Administration"),
}

# The page modules, in no particular order: each has ``urlpatterns`` and ``NAV``.
PAGE_MODULES = (
    "console.pages.home",
    "console.pages.meters",
    "console.pages.verification",
    "console.pages.billing",
    "console.pages.customers",
    "console.pages.admin",
    "console.pages.audit",
    "console.pages.inspection",
    "console.pages.vouchers",
)


@dataclass(frozen=True)
class Entry:
    section: str
    label: Promise
    url_name: str
    resource: str
    action: str = "view"


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    current: bool


@cache
def entries() -> tuple[Entry, ...]:
    found: list[Entry] = []
    for module_name in PAGE_MODULES:
        found.extend(importlib.import_module(module_name).NAV)
    order = list(SECTIONS)
    return tuple(sorted(found, key=lambda entry: order.index(entry.section)))


def navigation(request: HttpRequest) -> list[tuple[str, list[Link]]]:
    """The sections and links this person may open, the current page marked."""
    path = request.path
    sections: dict[str, list[Link]] = {}
    for entry in entries():
        if not can(request, entry.resource, entry.action):
            continue
        url = reverse(entry.url_name)
        current = path == url or (url != reverse("console:home") and path.startswith(url))
        sections.setdefault(entry.section, []).append(Link(str(entry.label), url, current))
    return [(str(SECTIONS[key]), links) for key, links in sections.items()]
