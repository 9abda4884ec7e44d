"""A flagged bill records who resolved it (actor kind and id beside the label), like every
work item (``tenancy.scoping.WorkItem``). Bills resolved before keep their label alone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("billing", "0010_run_progressed_at")]

    operations = [
        migrations.AddField(
            model_name="flaggedbill",
            name="resolved_by_kind",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="flaggedbill",
            name="resolved_by_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]
