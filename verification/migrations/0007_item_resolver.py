"""A queue item records who resolved it (actor kind and id beside the label), as every work item
does (``tenancy.scoping.WorkItem``); filled here for the items resolved before, from the audit
trail, as the staff KPIs used to match them."""

from collections import defaultdict
from typing import Any

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

BATCH = 1000

# Audit actions as stored (``tenancy.audit.AuditAction``), spelled out: a migration must not
# change meaning when the enum does.
CORRECTION_APPROVED = "correction.approved"
READINGS_APPROVED = "reading.approved"

Actor = tuple[int, str, int | None]  # tenant, actor kind, actor id


def _credit(items: Any, found: dict[Actor, list[int]]) -> None:
    """Write each actor on their items, where no resolver is recorded yet (the first event
    that names an item wins, as it did in the KPIs)."""
    for (tenant_id, kind, actor_id), item_ids in found.items():
        items.filter(tenant_id=tenant_id, pk__in=item_ids, resolved_by_kind="").update(
            resolved_by_kind=kind, resolved_by_id=actor_id
        )


def backfill_resolvers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    """Who resolved each item resolved before the fields existed: the approver of its
    correction (that correction's approval event), or the verifier whose ``reading.approved``
    event lists the item. An item no event names keeps its label alone. Read in batches, by
    key, whatever the size of the queue and the audit trail."""
    VerificationItem = apps.get_model("verification", "VerificationItem")
    AuditEvent = apps.get_model("tenancy", "AuditEvent")
    unknown = VerificationItem.objects.filter(state="resolved", resolved_by_kind="")

    last = 0
    while True:
        batch = list(
            unknown.filter(pk__gt=last, correction__isnull=False)
            .order_by("pk")
            .values_list("pk", "tenant_id", "correction_id")[:BATCH]
        )
        if not batch:
            break
        last = batch[-1][0]
        item_of = {(tenant_id, correction_id): pk for pk, tenant_id, correction_id in batch}
        events = AuditEvent.objects.filter(
            action=CORRECTION_APPROVED,
            object_type="verification.readingcorrection",
            object_id__in=[str(correction_id) for _pk, _tenant, correction_id in batch],
        ).order_by("id")
        found: dict[Actor, list[int]] = defaultdict(list)
        for tenant_id, object_id, kind, actor_id in events.values_list(
            "tenant_id", "object_id", "actor_kind", "actor_id"
        ):
            item_id = item_of.pop((tenant_id, int(object_id)), None)
            if item_id is not None:
                found[(tenant_id, kind, actor_id)].append(item_id)
        _credit(unknown, found)

    approvals = AuditEvent.objects.filter(action=READINGS_APPROVED).order_by("id")
    last = 0
    while True:
        events = list(
            approvals.filter(pk__gt=last).values_list(
                "pk", "tenant_id", "after", "actor_kind", "actor_id"
            )[:BATCH]
        )
        if not events:
            break
        last = events[-1][0]
        found = defaultdict(list)
        claimed: set[int] = set()
        for _pk, tenant_id, after, kind, actor_id in events:
            for item_id in (after or {}).get("items", []):
                if item_id not in claimed:
                    claimed.add(item_id)
                    found[(tenant_id, kind, actor_id)].append(item_id)
        _credit(unknown.filter(resolution="approved"), found)


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0006_calendar_day_unique_message"),
        ("verification", "0006_computation_progress"),
    ]

    operations = [
        migrations.AddField(
            model_name="verificationitem",
            name="resolved_by_kind",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="verificationitem",
            name="resolved_by_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(backfill_resolvers, migrations.RunPython.noop),
    ]
