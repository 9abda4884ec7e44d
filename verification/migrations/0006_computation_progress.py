"""A period computation records the last account it computed and when it last made progress
(so a task delivered again resumes, and its page tells a dead worker from a working one)."""

import django.utils.timezone
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import F


def ended_computations_progressed_when_they_ended(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor | None
) -> None:
    PeriodComputation = apps.get_model("verification", "PeriodComputation")
    PeriodComputation.objects.exclude(state="running").filter(finished_at__isnull=False).update(
        progressed_at=F("finished_at")
    )


class Migration(migrations.Migration):
    dependencies = [("verification", "0005_period_site_covers_status")]

    operations = [
        migrations.AddField(
            model_name="periodcomputation",
            name="cursor",
            field=models.BigIntegerField(default=0, help_text="The last account computed."),
        ),
        migrations.AddField(
            model_name="periodcomputation",
            name="progressed_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When a chunk of accounts was last computed (or the computation "
                "started).",
            ),
        ),
        migrations.RunPython(
            ended_computations_progressed_when_they_ended,
            migrations.RunPython.noop,
            elidable=True,
        ),
    ]
