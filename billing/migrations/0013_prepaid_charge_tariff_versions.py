"""Prepaid charges keep the tariff versions that priced their days, as bills do (0012): a
version added later from a day they cover counts them among what keeps the old prices, and a
version that priced one cannot be removed. An index on the charges' last reading time finds
those from a day on without reading every charge.

Charges made before this migration are filled in from the assignments and versions as they
stand now, the way the charging chooses them (0012's rules), over the days from the opening
reading's to the closing reading's, in the tenant's zone."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

import billing.models.bills

bill_versions = importlib.import_module("billing.migrations.0012_bill_tariff_versions")

BATCH = 2000


def fill_tariff_versions(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    charge_model = apps.get_model("billing", "PrepaidCharge")
    account_model = apps.get_model("customers", "Account")
    tenant_model = apps.get_model("tenancy", "Tenant")
    tenants = charge_model.objects.values_list("tenant_id", flat=True).distinct().order_by()
    for tenant_id in sorted(set(tenants)):
        zone = ZoneInfo(tenant_model.objects.get(pk=tenant_id).time_zone)
        tariffs = bill_versions._Tenant(apps, tenant_id)
        accounts = {
            row[0]: row
            for row in account_model.objects.filter(tenant_id=tenant_id).values_list(
                "pk", "customer_class", "utility", "opened_on"
            )
        }
        changed: dict[tuple[int, ...], list[int]] = {}
        charges = charge_model.objects.filter(tenant_id=tenant_id).order_by("pk")
        rows = charges.values_list("pk", "account_id", "site_id", "from_taken_at", "to_taken_at")
        for count, (pk, account_id, site_id, since, until) in enumerate(
            rows.iterator(chunk_size=BATCH), start=1
        ):
            account: Any = accounts.get(account_id)
            if account is not None:
                first = since.astimezone(zone).date()
                end = until.astimezone(zone).date() + timedelta(days=1)
                versions = tuple(tariffs.versions_of(account, site_id, first, end))
                if versions:
                    changed.setdefault(versions, []).append(pk)
            if count % BATCH == 0:
                _write(charge_model, changed)
        _write(charge_model, changed)


def _write(charge_model: Any, changed: dict[tuple[int, ...], list[int]]) -> None:
    for versions, charge_ids in changed.items():
        charge_model.objects.filter(pk__in=charge_ids).update(tariff_versions=list(versions))
    changed.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0012_bill_tariff_versions"),
        ("customers", "0002_initial"),
        ("tenancy", "0006_calendar_day_unique_message"),
    ]

    operations = [
        migrations.AddField(
            model_name="prepaidcharge",
            name="tariff_versions",
            field=billing.models.bills.IdListField(
                blank=True,
                default=list,
                help_text="The tariff versions that priced the charge's days, in their order.",
            ),
        ),
        migrations.RunPython(fill_tariff_versions, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="prepaidcharge",
            index=models.Index(
                fields=["tenant", "to_taken_at"],
                include=("from_taken_at", "tariff_versions"),
                name="prepaid_charge_to",
            ),
        ),
    ]
