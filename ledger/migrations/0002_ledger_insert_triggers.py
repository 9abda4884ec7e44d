"""The ledger's insert triggers on PostgreSQL, in plain PL/pgSQL (see ledger.models)."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = """
-- A customer's ledger account row is updated on every posting: room on its page keeps the
-- update there (HOT), touching none of the table's indexes.
ALTER TABLE ledger_ledgeraccount SET (fillfactor = 70);

CREATE FUNCTION ledger_entry_txid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.txid := txid_current();
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_entry_txid BEFORE INSERT ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_txid();

CREATE FUNCTION ledger_entry_zero_sum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    line_count integer;
    line_sum numeric;
BEGIN
    SELECT count(*), coalesce(sum(amount), 0) INTO line_count, line_sum
        FROM ledger_journalline WHERE entry_id = NEW.id;
    IF line_count < 2 OR line_sum <> 0 THEN
        RAISE EXCEPTION 'journal entry % does not balance: % lines summing to %',
            NEW.id, line_count, line_sum USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entry_zero_sum AFTER INSERT ON ledger_journalentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_zero_sum();

CREATE FUNCTION ledger_line_same_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_lines n JOIN ledger_journalentry e ON e.id = n.entry_id
        WHERE e.txid IS DISTINCT FROM txid_current()
    ) THEN
        RAISE EXCEPTION 'lines can only be added to an entry while it is posted'
            USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_line_same_transaction AFTER INSERT ON ledger_journalline
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_line_same_transaction();
"""

DROP = """
ALTER TABLE ledger_ledgeraccount RESET (fillfactor);
DROP TRIGGER IF EXISTS ledger_line_same_transaction ON ledger_journalline;
DROP FUNCTION IF EXISTS ledger_line_same_transaction();
DROP TRIGGER IF EXISTS ledger_entry_zero_sum ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_entry_zero_sum();
DROP TRIGGER IF EXISTS ledger_entry_txid ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_entry_txid();
"""


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
