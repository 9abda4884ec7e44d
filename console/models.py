"""What the console stores: the dashboards' summaries, computed by a periodic job so a
dashboard reads one row per site however large the tenant is."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenancy.models import Site
from tenancy.scoping import TenantOwned


class DashboardSummary(TenantOwned):
    """One site's figures for the dashboards (reading, verification, billing, line loss), as
    JSON, with when they were computed (the dashboard shows their age)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    data = models.JSONField()
    computed_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "site"], name="dashboard_summary_site"),
        ]
