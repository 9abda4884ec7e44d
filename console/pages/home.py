"""The console's first page: a dashboard per role the person holds.

- meter readers: reading completeness by site and gateway, the gateway health map, meters
  not read;
- verifiers (who also run the bills): the queue by rule, oldest first, flagged bills, the
  period's status, the consumption trend;
- site managers: the same for their sites, and line loss by transformer area;
- inspectors: the latest audit events.

The figures come from the summaries the job ``console.refresh_dashboards`` keeps (one row per
site), so the page stays fast on a large tenant; it shows how old they are. Each panel covers
the sites on which the person holds a role for what the panel shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.access import principal_of, scope_for
from console.models import DashboardSummary
from console.nav import Entry
from console.summaries import combined
from console.tasks import refresh_tenant_dashboards
from tenancy.models import AuditEvent, Site
from tenancy.principal import SiteScope
from tenancy.roles import Role
from verification.models import Rule

NAV: list[Entry] = [Entry("overview", _("Dashboard"), "console:home", "tenant")]

RECENT_EVENTS = 15


def _in_scope(summaries: list[DashboardSummary], scope: SiteScope) -> list[DashboardSummary]:
    return [s for s in summaries if scope.allows(s.site_id)]


def _moment(value: str | None) -> datetime | None:
    """A time the summaries keep as ISO text, back to a datetime (the page shows it in the
    tenant's zone)."""
    return datetime.fromisoformat(value) if value else None


def _with_moments(sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **site,
            "gateways": [
                {**gateway, "last_success": _moment(gateway["last_success"])}
                for gateway in site["gateways"]
            ],
        }
        for site in sites
    ]


def _rule_label(rule: str) -> str:
    try:
        return str(Rule(rule).label)
    except ValueError:
        return rule


def _completeness_chart(sites: list[dict[str, Any]]) -> dict[str, Any]:
    names = [site["site"] for site in sites]
    shares = [
        round(100 * site["read"] / site["meters"], 1) if site["meters"] else 0 for site in sites
    ]
    return {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 120, "right": 40, "top": 20, "bottom": 30},
        "xAxis": {"type": "value", "max": 100, "name": "%"},
        "yAxis": {"type": "category", "data": names},
        "series": [{"type": "bar", "data": shares, "name": gettext("Read in the last slot (%)")}],
    }


def _health_map(sites: list[dict[str, Any]]) -> dict[str, Any]:
    """Gateways as tiles sized by their meters and coloured by the share read in 24 hours."""
    children = []
    for site in sites:
        tiles = [
            {
                "name": gateway["name"],
                "value": [max(gateway["meters"], 1), round(100 * (gateway["read_share"] or 0), 1)],
            }
            for gateway in site["gateways"]
        ]
        children.append({"name": site["site"], "children": tiles})
    return {
        "tooltip": {},
        "visualMap": {
            "type": "continuous",
            "min": 0,
            "max": 100,
            "dimension": 1,
            "inRange": {"color": ["#b42318", "#e8c66f", "#0a5c42"]},
            "text": ["100%", "0%"],
            "calculable": False,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
        },
        "series": [
            {
                "type": "treemap",
                "data": children,
                "roam": False,
                "nodeClick": False,
                "breadcrumb": {"show": False},
                "bottom": 40,
                "levels": [{"itemStyle": {"gapWidth": 3}}, {"itemStyle": {"gapWidth": 1}}],
            }
        ],
    }


def _trend_chart(trend: dict[str, float]) -> dict[str, Any]:
    return {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 70, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": list(trend)},
        "yAxis": {"type": "value", "name": "kWh"},
        "series": [{"type": "line", "data": [round(v, 2) for v in trend.values()], "name": "kWh"}],
    }


def _line_loss_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    periods = sorted({row["period"] for row in rows})
    areas: dict[str, dict[str, Any]] = {}
    for row in rows:
        label = f"{row['site']} · {row['area']}"
        rate = float(row["rate"]) * 100 if row["rate"] is not None else None
        areas.setdefault(label, {})[row["period"]] = rate
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll", "bottom": 0},
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 50},
        "xAxis": {"type": "category", "data": periods},
        "yAxis": {"type": "value", "name": "%"},
        "series": [
            {"type": "line", "name": name, "data": [by_period.get(p) for p in periods]}
            for name, by_period in areas.items()
        ],
    }


def _figures(request: HttpRequest, summaries: list[DashboardSummary]) -> dict[str, Any]:
    principal = principal_of(request)
    assert principal is not None
    roles = principal.roles
    panels: dict[str, Any] = {}
    if roles & {Role.METER_READER, Role.SITE_MANAGER, Role.TENANT_ADMIN}:
        part = combined(_in_scope(summaries, scope_for(request, "readings", "completeness")))
        panels["reading"] = {
            **part["reading"],
            "sites": _with_moments(part["sites"]),
            "completeness_chart": _completeness_chart(part["sites"]),
            "health_map": _health_map(part["sites"]),
        }
    if roles & {Role.VERIFIER, Role.SITE_MANAGER, Role.TENANT_ADMIN, Role.HQ_FINANCE}:
        part = combined(_in_scope(summaries, scope_for(request, "verification")))
        panels["verify"] = {
            **part["queue"],
            "rules": [
                {**row, "label": _rule_label(row["rule"]), "oldest": _moment(row["oldest"])}
                for row in part["queue_rules"]
            ],
            "periods": part["periods"],
            "trend_chart": _trend_chart(part["trend"]) if part["trend"] else None,
        }
    if roles & {Role.SITE_MANAGER, Role.TENANT_ADMIN, Role.HQ_FINANCE}:
        part = combined(_in_scope(summaries, scope_for(request, "line_losses")))
        panels["line_loss"] = {
            "rows": part["line_loss"],
            "chart": _line_loss_chart(part["line_loss"]) if part["line_loss"] else None,
        }
    if roles & {Role.INSPECTOR, Role.TENANT_ADMIN}:
        scope = scope_for(request, "audit_events")
        panels["audit"] = list(
            AuditEvent.objects.for_sites(scope.site_ids_or_none).order_by("-id")[:RECENT_EVENTS]
        )
    return panels


def _summaries(tenant_id: int) -> list[DashboardSummary]:
    summaries = list(DashboardSummary.objects.select_related("site").order_by("site__name"))
    if not summaries and cache.add(f"dashboards-refresh:{tenant_id}", 1, 120):
        # A new tenant: compute its figures now (in the background where a broker runs).
        refresh_tenant_dashboards.delay(tenant_id=tenant_id)
        summaries = list(DashboardSummary.objects.select_related("site").order_by("site__name"))
    return summaries


@login_required
def home(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    if principal is None:
        return render(request, "console/home.html", {"principal": None})
    site_names = {site.pk: str(site) for site in Site.objects.all()}
    grants = [
        {"role": Role(role).label, "site": site_names.get(site_id) if site_id else None}
        for role, site_id in sorted(principal.grants, key=lambda g: (g[0], g[1] or 0))
    ]
    assert principal.tenant is not None
    summaries = _summaries(principal.tenant.pk)
    computed: list[datetime] = [s.computed_at for s in summaries]
    return render(
        request,
        "console/home.html",
        {
            "principal": principal,
            "grants": grants,
            "panels": _figures(request, summaries),
            "computed_at": min(computed) if computed else None,
            "charts": True,
        },
    )


urlpatterns: list[URLPattern] = [path("", home, name="home")]
