"""What the verification pages share: filters narrowed to the person's sites, the registers
of a reading or a correction as staff read them, and the rules' labels."""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from console.access import SITES
from console.lists import display
from verification.effective import REGISTERS
from verification.models import Rule

REGISTER_LABELS = {
    "total": _("Total (kWh)"),
    "tou_spike": _("Spike (尖)"),
    "tou_peak": _("Peak (峰)"),
    "tou_flat": _("Flat (平)"),
    "tou_valley": _("Valley (谷)"),
}
assert list(REGISTER_LABELS) == list(REGISTERS)


class SiteFilterSet(django_filters.FilterSet):
    """A filter set with a ``site`` choice of the sites the page's permission covers (the
    ``Listing`` hands the request to the filter set, and django-filter to ``SITES``)."""

    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=SITES)


def registers(source: Any) -> list[tuple[str, str]]:
    """The registers of a reading or a correction, labelled, those it does not carry left out."""
    return [
        (str(label), display(getattr(source, name)))
        for name, label in REGISTER_LABELS.items()
        if getattr(source, name) is not None
    ]


def rule_label(rule: str) -> str:
    try:
        return str(Rule(rule).label)
    except ValueError:
        return rule


def rule_labels(rules: str) -> str:
    return "; ".join(rule_label(rule) for rule in rules.split(",") if rule)


def back_to(request: HttpRequest, default: str) -> str:
    """Where to go after an action: the page it was taken from (``next``), if it is ours."""
    asked = request.POST.get("next") or request.GET.get("next") or ""
    if asked and url_has_allowed_host_and_scheme(asked, {request.get_host()}):
        return asked
    return default
