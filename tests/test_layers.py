"""The apps are layers run one way (the import-linter contract in pyproject.toml keeps the
imports so); these tests keep the hand-overs between layers honest: every task a lower stage
sends by name, and every periodic job an app declares, names a task that exists."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from celery import current_app
from django.db import transaction

from tenancy import handover
from tenancy.periodic import periodic_jobs
from tests.world import World

ROOT = Path(__file__).resolve().parent.parent


def test_no_app_imports_a_layer_above_it() -> None:
    """The import-linter layers contract of pyproject.toml (``make lint`` runs it too)."""
    linted = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout[-3000:]
    assert "1 kept, 0 broken" in linted.stdout


def test_every_task_sent_up_the_layers_by_name_is_registered() -> None:
    registered = set(current_app.tasks)
    assert set(handover.TASKS) <= registered, set(handover.TASKS) - registered


def test_every_periodic_job_names_a_registered_task_and_the_apps_declare_all_of_them() -> None:
    jobs = periodic_jobs()
    assert {job.task for job in jobs} <= set(current_app.tasks)
    assert {job.name for job in jobs} == {
        "clear expired sessions",
        "dispatch polling rounds",
        "expire meter commands",
        "validate readings",
        "charge prepaid accounts",
        "refresh dashboards",
        "expire recharge cards",
    }


@pytest.mark.django_db(transaction=True)
def test_readings_stored_are_checked_by_the_verify_stage_once_committed(
    world: World, eager_tasks: None
) -> None:
    """The read stage sends ``verification.validate_readings`` by name; with no broker it runs
    in process once the transaction that stored the reading commits, not before."""
    from verification.models import ReadingCheck

    meter = world.a.meter()
    with world.a.active():
        with transaction.atomic():
            world.a.reading(meter, total=Decimal("100"))
            assert not ReadingCheck.objects.filter(meter=meter).exists()
        assert ReadingCheck.objects.filter(meter=meter).count() == 1
