"""A bill run records when it last made progress (each committed chunk writes it), so its page
can tell a run whose worker died from one that is working."""

import django.utils.timezone
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import F


def finished_runs_progressed_when_they_finished(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor
) -> None:
    """Runs past pricing and issuing last moved when they finished; a run still pricing or
    issuing keeps the migration's time (it is watched from now on, not called stalled at once)."""
    BillRun = apps.get_model("billing", "BillRun")
    BillRun.objects.exclude(state__in=["running", "issuing"]).filter(
        finished_at__isnull=False
    ).update(progressed_at=F("finished_at"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0009_bill_site_period_covers_accounts")]

    operations = [
        migrations.AddField(
            model_name="billrun",
            name="progressed_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When a chunk of accounts was last priced or issued (or the stage began).",
                verbose_name="last progress",
            ),
        ),
        migrations.RunPython(
            finished_runs_progressed_when_they_finished, migrations.RunPython.noop, elidable=True
        ),
    ]
