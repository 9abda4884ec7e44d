"""Ledger accounts keep half of each page free.

Every posting adds to the cached balance of the accounts it touches. With full pages (the
default) each such update writes a new row version on another page and a new entry in each of
the table's seven indexes; with room on the page it is a heap-only update that touches no index.
A bill run updates 2,000 receivables in one statement: 68 ms at fill factor 100, 9-15 ms at 50
(measured on 1,000,000 accounts). The table is small beside the journal, so the space is cheap.
"""

from django.db import migrations


def set_fillfactor(apps, schema_editor, value=50):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE ledger_ledgeraccount SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    set_fillfactor(apps, schema_editor, 100)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_ledger_insert_triggers")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
