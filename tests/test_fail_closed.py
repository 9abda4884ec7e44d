"""Fail closed everywhere: business code reaches rows only through the scoped managers, in the
tenant it was given; the unscoped manager is allowed only in the system code listed here; and
every unique key of a tenant's table starts with ``tenant_id`` (so the schema can be
distributed by tenant)."""

from __future__ import annotations

import ast
import multiprocessing
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connections, models

from billing.models import BillRun, RunState
from billing.runs.workers import shard_worker
from billing.tasks import price_bill_run_task
from billing.tests.test_bill_runs import PERIOD, Billing
from tenancy.scoping import TenantOwned, TenantSettings
from tests.world import World
from verification.tasks import validate_tenant_readings

ROOT = Path(__file__).resolve().parent.parent
APPS = [
    "config", "tenancy", "customers", "ledger", "metering", "gateway_bridge", "verification",
    "billing", "collection", "inspection", "console", "portal",
]  # fmt: skip

# System code: it works before a tenant is known or across tenants, so it may use the unscoped
# manager. Anything else (services, tasks, workers, views, documents) runs in a tenant context
# and uses the scoped managers.
UNSCOPED_ALLOWED = {
    # Authentication: finds the principal (a token's client, a user's grants) and so its tenant.
    "tenancy/principal.py",
    # The platform operators' admin site, which works across tenants.
    "tenancy/admin.py",
    # The ledger check (manage.py ledger_check and the test suite), across tenants.
    "ledger/checks.py",
}


def _business_modules() -> list[Path]:
    return sorted(
        path
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts
        and "migrations" not in path.relative_to(ROOT).parts
    )


def _unscoped_uses(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "dangerously_unscoped"
    ]


def test_the_unscoped_manager_is_used_only_by_the_listed_system_modules() -> None:
    users = {
        str(path.relative_to(ROOT)): lines
        for path in _business_modules()
        if (lines := _unscoped_uses(path))
    }
    outside = {module: lines for module, lines in users.items() if module not in UNSCOPED_ALLOWED}
    assert not outside, f"business code reaches past the tenant scope: {outside}"
    assert set(users) == UNSCOPED_ALLOWED, "a listed module no longer needs it: shorten the list"


def _unique_keys(model: type[models.Model]) -> list[tuple[str, list[str]]]:
    keys = []
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            keys.append((constraint.name, list(constraint.fields)))
    for fields in model._meta.unique_together:
        keys.append(("unique_together", list(fields)))
    for field in model._meta.local_fields:
        if field.unique and not field.primary_key:
            keys.append((field.name, [field.name]))
    return keys


# Tables that identify a principal before its tenant is known: a staff user's name and an API
# token's hash are looked up to find the tenant, so they are unique across tenants.
GLOBAL_KEYS = {("tenancy.User", "username"), ("tenancy.ApiClient", "key_hash")}


def test_every_unique_key_of_a_tenants_table_starts_with_the_tenant() -> None:
    offenders = []
    checked = 0
    for model in apps.get_models():
        owned = issubclass(model, TenantOwned | TenantSettings) or any(
            field.name == "tenant" for field in model._meta.local_fields
        )
        if not owned:
            continue
        for name, fields in _unique_keys(model):
            checked += 1
            if (model._meta.label, name) in GLOBAL_KEYS:
                continue
            if fields[0] not in ("tenant", "tenant_id"):
                offenders.append(f"{model._meta.label}.{name}: {fields}")
    assert checked > 30
    assert not offenders, "unique keys that do not start with tenant_id: " + ", ".join(offenders)


@pytest.fixture
def run_of_a(world: World) -> BillRun:
    billing = Billing(world)
    billing.account("200")
    with world.a.active():
        from billing.runs.services import open_bill_run

        return open_bill_run(billing.as_(billing.starter), billing.site, PERIOD)


@pytest.mark.django_db
def test_a_task_given_another_tenants_run_finds_nothing(world: World, run_of_a: BillRun) -> None:
    result = price_bill_run_task.apply(
        kwargs={"tenant_id": world.b.tenant.pk, "run_id": run_of_a.pk}, throw=False
    )
    assert isinstance(result.result, BillRun.DoesNotExist)
    run_of_a.refresh_from_db()
    assert (run_of_a.state, run_of_a.bills) == (RunState.RUNNING, 0)


@pytest.mark.django_db
def test_a_validation_task_checks_only_the_tenant_it_was_given(world: World) -> None:
    from verification.models import ReadingCheck

    reading = world.a.reading()
    result = validate_tenant_readings.apply(kwargs={"tenant_id": world.b.tenant.pk}).get()
    assert result["checked"] == 0
    assert not ReadingCheck.dangerously_unscoped.filter(reading=reading).exists()
    assert validate_tenant_readings.apply(kwargs={"tenant_id": world.a.tenant.pk}).get() == {
        "checked": 1,
        "suspect": 0,
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_bill_run_worker_given_another_tenants_run_finds_nothing(
    world: World, run_of_a: BillRun
) -> None:
    """A forked worker sets the tenant it was given before it touches a row, and loads the run
    through the scoped manager: a run of another tenant is not found and nothing is priced."""
    starter = (world.a.system.kind, world.a.system.id, world.a.system.label)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    wrong = context.Process(
        target=shard_worker, args=("price", world.b.tenant.pk, run_of_a.pk, starter, 0, 10)
    )
    wrong.start()
    wrong.join(60)
    assert wrong.exitcode != 0
    run_of_a.refresh_from_db()
    assert (run_of_a.state, run_of_a.done, run_of_a.bills) == (RunState.RUNNING, 0, 0)
    connections.close_all()  # a forked child must not share the parent's connection
    right = context.Process(
        target=shard_worker, args=("price", world.a.tenant.pk, run_of_a.pk, starter, 0, 10)
    )
    right.start()
    right.join(60)
    assert right.exitcode == 0
    run_of_a.refresh_from_db()
    assert (run_of_a.state, run_of_a.bills) == (RunState.DRAFTED, 1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url,model_label",
    [
        ("/api/v1/verification-settings/current/", "verification.VerificationSettings"),
        ("/api/v1/billing-settings/current/", "billing.BillingSettings"),
    ],
)
def test_reading_settings_writes_nothing_and_the_first_change_stores_them(
    world: World, url: str, model_label: str
) -> None:
    model = apps.get_model(model_label)
    alice = world.client_for(world.alice)
    shown = alice.get(url)
    assert shown.status_code == 200
    assert not model.objects.filter(tenant=world.a.tenant).exists(), "a GET wrote a row"
    field = "spike_factor" if "verification" in url else "history_bills"
    value = "7.00" if field == "spike_factor" else 9
    changed = alice.patch(url, {field: value}, format="json")
    assert changed.status_code == 200 and str(changed.json()[field]) == str(value)
    stored = model.objects.get(tenant=world.a.tenant)
    assert str(getattr(stored, field)) == str(value)
    assert {k: v for k, v in shown.json().items() if k != field} == {
        k: v for k, v in changed.json().items() if k != field
    }
