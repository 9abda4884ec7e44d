"""Bills keep the tariff versions that priced their days, so a version added later from a day
they cover can count the issued bills it would leave at the old prices (from the site-period
index, which now holds the bills' days and versions too: rebuilt once they are filled in).

Bills drafted before this migration are filled in from the assignments and versions as they
stand now, the way a bill run chooses them: the account's own assignment, else its class's
limited to its site, else its class's for every site; within a tariff, the latest version in
force on the day. A bill whose days no tariff covers keeps an empty list."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta
from typing import Any

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

import billing.models.bills

BATCH = 2000


class _Tenant:
    """One tenant's tariff versions and assignments, to tell which versions priced a bill."""

    def __init__(self, apps: StateApps, tenant_id: int) -> None:
        version_model = apps.get_model("billing", "TariffVersion")
        assignment_model = apps.get_model("billing", "TariffAssignment")
        self.versions: dict[int, list[tuple[date, int]]] = {}
        for pk, tariff_id, starts in version_model.objects.filter(tenant_id=tenant_id).values_list(
            "pk", "tariff_id", "effective_from"
        ):
            self.versions.setdefault(tariff_id, []).append((starts, pk))
        for found in self.versions.values():
            found.sort()
        self.dates = sorted({starts for found in self.versions.values() for starts, _pk in found})
        rows = list(
            assignment_model.objects.filter(tenant_id=tenant_id).values_list(
                "pk", "tariff_id", "account_id", "customer_class", "effective_from",
                "effective_to", "tariff__utility",
            )
        )  # fmt: skip
        sites: dict[int, set[int]] = {}
        through = assignment_model.sites.through.objects.filter(
            tariffassignment_id__in=[row[0] for row in rows]
        )
        for assignment_id, site_id in through.values_list("tariffassignment_id", "site_id"):
            sites.setdefault(assignment_id, set()).add(site_id)
        latest_first = sorted(rows, key=lambda row: row[4], reverse=True)
        self.own: dict[int, list[tuple[Any, ...]]] = {}
        self.by_class: list[tuple[Any, ...]] = []
        for pk, tariff_id, account_id, customer_class, starts, ends, utility in latest_first:
            row = (tariff_id, customer_class, starts, ends, utility, sites.get(pk, set()))
            if account_id is not None:
                self.own.setdefault(account_id, []).append(row)
            else:
                self.by_class.append(row)

    def tariff_on(self, day: date, account: tuple[Any, ...], site_id: int) -> int | None:
        account_id, customer_class, utility, _opened = account
        of_class = [r for r in self.by_class if r[1] == customer_class and r[4] == utility]
        for found in (
            self.own.get(account_id, []),
            [r for r in of_class if site_id in r[5]],
            [r for r in of_class if not r[5]],
        ):
            for tariff_id, _class, starts, ends, _utility, _sites in found:
                if starts <= day and (ends is None or day < ends):
                    return tariff_id
        return None

    def versions_of(
        self, account: tuple[Any, ...], site_id: int, first: date, end: date
    ) -> list[int]:
        """The versions that price days ``first`` ≤ d < ``end``, in their order."""
        edges = {first, end}
        edges.update(d for d in self.dates if first <= d <= end)
        for rows in (self.own.get(account[0], []), self.by_class):
            for row in rows:
                edges.update(d for d in (row[2], row[3]) if d and first <= d <= end)
        found: list[int] = []
        for day in sorted(edges)[:-1]:
            tariff_id = self.tariff_on(day, account, site_id)
            versions = self.versions.get(tariff_id, []) if tariff_id is not None else []
            index = bisect_right(versions, (day, float("inf"))) - 1
            if index >= 0 and versions[index][1] not in found:
                found.append(versions[index][1])
        return found


def fill_tariff_versions(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Each bill's versions, worked out once for the bills that share what decides them (an
    account of a class with no assignment of its own, the same site and days), and written
    with one UPDATE for each list of versions in a batch."""
    bill_model = apps.get_model("billing", "Bill")
    account_model = apps.get_model("customers", "Account")
    tenants = bill_model.objects.values_list("tenant_id", flat=True).distinct().order_by()
    for tenant_id in sorted(set(tenants)):
        tariffs = _Tenant(apps, tenant_id)
        accounts = {
            row[0]: row
            for row in account_model.objects.filter(tenant_id=tenant_id).values_list(
                "pk", "customer_class", "utility", "opened_on"
            )
        }
        known: dict[tuple[Any, ...], tuple[int, ...]] = {}
        changed: dict[tuple[int, ...], list[int]] = {}
        bills = bill_model.objects.filter(tenant_id=tenant_id).order_by("pk")
        for count, (pk, account_id, site_id, starts_on, ends_on) in enumerate(
            bills.values_list("pk", "account_id", "site_id", "starts_on", "ends_on").iterator(
                chunk_size=BATCH
            ),
            start=1,
        ):
            account = accounts.get(account_id)
            if account is not None:  # the account's own key guarantees it
                first = max(starts_on, account[3])
                own = account_id in tariffs.own
                key = (account[1:3], site_id, first, ends_on)  # of a class's account
                versions = None if own else known.get(key)
                if versions is None:
                    end = ends_on + timedelta(days=1)
                    versions = tuple(tariffs.versions_of(account, site_id, first, end))
                    if not own:
                        known[key] = versions
                if versions:
                    changed.setdefault(versions, []).append(pk)
            if count % BATCH == 0:
                _write(bill_model, changed)
        _write(bill_model, changed)


def _write(bill_model: Any, changed: dict[tuple[int, ...], list[int]]) -> None:
    for versions, bill_ids in changed.items():
        bill_model.objects.filter(pk__in=bill_ids).update(tariff_versions=list(versions))
    changed.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_flagged_bill_resolver"),
        ("customers", "0002_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="bill",
            name="tariff_versions",
            field=billing.models.bills.IdListField(
                blank=True,
                default=list,
                help_text="The tariff versions that priced the bill's days, in their order.",
            ),
        ),
        migrations.RemoveIndex(model_name="bill", name="bill_site_period"),
        migrations.RunPython(fill_tariff_versions, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="bill",
            index=models.Index(
                fields=["tenant", "site", "period", "account"],
                include=("state", "kind", "corrects", "starts_on", "ends_on", "tariff_versions"),
                name="bill_site_period",
            ),
        ),
    ]
