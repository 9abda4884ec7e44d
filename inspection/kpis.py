"""Staff KPIs of a period, per person and per site (DOMAIN: "KPIs per staff member: reading
completeness, verification errors, collection rate").

- **Reading completeness**: the share of meter reads the polling rounds were due that answered
  (``metering.services.completeness_by_site``); a meter reader is shown the figure of the sites
  they read for.
- **Readings entered by hand**: ``reading.entered`` events of the period.
- **Verification turnaround**: from a suspect reading's arrival in the queue to its approval or
  its correction's approval, credited to whoever resolved the item (recorded on the item by the
  service that resolved it): median and 90th percentile, in hours.
- **Later found wrong**: findings on what a verifier approved (a suspect reading, a correction).
- **Inspection findings**: by the person they are addressed to and by severity, and the items
  checked that the person answers for (so the count reads against how much was looked at).

Every figure is a fixed number of aggregate queries over the period, whatever the number of
people or sites; the turnaround percentiles are computed from the period's resolution times.
Collection figures (collection rate) join when the collect stage has them.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count

from inspection.models import (
    VERIFIER_RESPONSIBILITIES,
    Finding,
    ItemState,
    Outcome,
    SampleItem,
    Severity,
)
from metering.services import Completeness, completeness_by_site
from tenancy.audit import AuditAction
from tenancy.models import ActorKind, AuditEvent, RoleGrant, Site, User
from tenancy.roles import Role
from verification.models import ItemState as QueueState
from verification.models import VerificationItem


@dataclass
class Figures:
    """The KPIs of one person or one site."""

    label: str
    key: int | str
    completeness: Completeness | None = None
    entered: int = 0
    turnaround_hours: list[float] = field(default_factory=list)
    found_wrong: int = 0
    findings: dict[str, int] = field(default_factory=lambda: {s: 0 for s in Severity.values})
    items_checked: int = 0

    @property
    def resolved(self) -> int:
        return len(self.turnaround_hours)

    @property
    def median_hours(self) -> float | None:
        return round(statistics.median(self.turnaround_hours), 1) if self.turnaround_hours else None

    @property
    def p90_hours(self) -> float | None:
        hours = self.turnaround_hours
        if not hours:
            return None
        if len(hours) == 1:
            return round(hours[0], 1)
        return round(statistics.quantiles(hours, n=10, method="inclusive")[8], 1)

    @property
    def findings_total(self) -> int:
        return sum(self.findings.values())

    @property
    def completeness_percent(self) -> float | None:
        ratio = self.completeness.ratio if self.completeness else None
        return round(100 * ratio, 1) if ratio is not None else None


@dataclass
class KpiReport:
    since: datetime
    until: datetime
    people: list[Figures]
    sites: list[Figures]


def _sum(parts: Iterable[Completeness]) -> Completeness | None:
    parts = list(parts)
    if not parts:
        return None
    return Completeness(due=sum(p.due for p in parts), read=sum(p.read for p in parts))


class _People:
    """Rows per person: a staff user by id, or another actor by label."""

    def __init__(self) -> None:
        self.rows: dict[int | str, Figures] = {}

    def get(self, user_id: int | None, label: str) -> Figures:
        key: int | str = user_id if user_id is not None else f"label:{label}"
        if key not in self.rows:
            self.rows[key] = Figures(label=label, key=key)
        return self.rows[key]


def staff_kpis(site_ids: frozenset[int] | None, since: datetime, until: datetime) -> KpiReport:
    """The KPIs of [since, until) for the given sites (``None``: every site of the tenant)."""
    sites = Site.objects.order_by("code")
    if site_ids is not None:
        sites = sites.filter(pk__in=site_ids)
    site_rows = {site.pk: Figures(label=str(site), key=site.pk) for site in sites}
    people = _People()
    in_sites = list(site_rows)

    completeness = completeness_by_site(in_sites, since, until)
    for site_id, figures in site_rows.items():
        figures.completeness = completeness.get(site_id)
    readers: dict[int, set[int]] = defaultdict(set)
    grants = RoleGrant.objects.filter(role=Role.METER_READER, user__isnull=False).values_list(
        "user_id", "site_id"
    )
    for reader_id, site_id in grants:
        if reader_id is None:
            continue
        if site_id is None:
            readers[reader_id].update(in_sites)
        elif site_id in site_rows:
            readers[reader_id].add(site_id)

    entered = (
        AuditEvent.objects.filter(
            action=AuditAction.READING_ENTERED,
            created_at__gte=since,
            created_at__lt=until,
            site_id__in=in_sites,
        )
        .values("actor_kind", "actor_id", "actor_label", "site_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in entered:
        user_id = row["actor_id"] if row["actor_kind"] == ActorKind.STAFF else None
        people.get(user_id, row["actor_label"]).entered += row["count"]
        site_rows[row["site_id"]].entered += row["count"]

    items = VerificationItem.objects.filter(
        state=QueueState.RESOLVED,
        resolved_at__gte=since,
        resolved_at__lt=until,
        site_id__in=in_sites,
    ).values_list(
        "site_id", "created_at", "resolved_at", "resolved_by_kind", "resolved_by_id",
        "resolved_by_label",
    )  # fmt: skip
    for site_id, created_at, resolved_at, kind, actor_id, label in items:
        assert resolved_at is not None  # resolved items
        hours = (resolved_at - created_at).total_seconds() / 3600
        site_rows[site_id].turnaround_hours.append(hours)
        people.get(actor_id if kind == ActorKind.STAFF else None, label).turnaround_hours.append(
            hours
        )

    findings = (
        Finding.objects.filter(
            recorded_at__gte=since,
            recorded_at__lt=until,
            site_id__in=in_sites,
            outcome=Outcome.FINDING,
        )
        .values("responsible_id", "responsible_label", "responsibility", "severity", "site_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in findings:
        site_rows[row["site_id"]].findings[row["severity"]] += row["count"]
        if not row["responsible_label"]:
            continue
        person = people.get(row["responsible_id"], row["responsible_label"])
        person.findings[row["severity"]] += row["count"]
        if row["responsibility"] in VERIFIER_RESPONSIBILITIES:
            person.found_wrong += row["count"]

    checked = (
        SampleItem.objects.filter(
            state=ItemState.CHECKED,
            site_id__in=in_sites,
            findings__recorded_at__gte=since,
            findings__recorded_at__lt=until,
        )
        .values("responsible_id", "responsible_label", "site_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in checked:
        site_rows[row["site_id"]].items_checked += row["count"]
        if row["responsible_label"]:
            people.get(row["responsible_id"], row["responsible_label"]).items_checked += row[
                "count"
            ]

    for user_id, reader_sites in readers.items():
        if reader_sites:
            people.get(user_id, "").completeness = _sum(
                completeness[site_id] for site_id in reader_sites if site_id in completeness
            ) or Completeness(due=0, read=0)

    user_ids = [key for key in people.rows if isinstance(key, int)]
    users = User.tenant_staff.in_bulk(user_ids)
    for key, figures in people.rows.items():
        if isinstance(key, int) and key in users:
            figures.label = users[key].label
        figures.label = figures.label or str(key)
    return KpiReport(
        since=since,
        until=until,
        people=sorted(people.rows.values(), key=lambda row: row.label),
        sites=list(site_rows.values()),
    )
