"""What the verification pages share: filters narrowed to the person's sites, the registers
of a reading or a correction as staff read them, and the rules' labels."""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from console.lists import display
from tenancy.models import Site
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
    """A filter set with a ``site`` choice of the sites the page's permission covers: build it
    with :meth:`for_request` (django-filter does not hand the request to the filters here)."""

    site = django_filters.ModelChoiceFilter(label=_("Site"), queryset=Site.objects.all())
    site_ids: frozenset[int] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site_filter: Any = self.filters["site"]
        site_filter.queryset = Site.objects.for_sites(self.site_ids).order_by("name")

    @classmethod
    def for_request(cls, request: HttpRequest) -> type[SiteFilterSet]:
        scope = request.site_scope  # type: ignore[attr-defined]  # set by @page
        return type(cls.__name__, (cls,), {"site_ids": scope.site_ids_or_none})


def permitted_sites(request: HttpRequest) -> list[Site]:
    scope = request.site_scope  # type: ignore[attr-defined]  # set by @page
    return list(Site.objects.for_sites(scope.site_ids_or_none).order_by("name"))


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
