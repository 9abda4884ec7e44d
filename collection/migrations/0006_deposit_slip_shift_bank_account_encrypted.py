"""A card deposit records the terminal's slip reference and the shift it was taken in (its
expected card total counts it); the customer's bank account of a transfer refund is stored
encrypted (personal data), in the refund and in a closing's payout.

The rows already there are encrypted in place (and decrypted again going back); the values are
read and written with plain SQL, since the field in this state decrypts what it reads."""

from __future__ import annotations

from collections.abc import Callable

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

import tenancy.fields

BATCH = 500


def _recode_refunds(schema_editor: BaseDatabaseSchemaEditor, recode: Callable[[str], str]) -> None:
    connection = schema_editor.connection
    table = connection.ops.quote_name("collection_refund")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, payee_bank_account FROM {table} WHERE payee_bank_account <> ''")  # noqa: S608
        rows = cursor.fetchall()
        for refund_id, value in rows:
            cursor.execute(
                f"UPDATE {table} SET payee_bank_account = %s WHERE id = %s",  # noqa: S608
                [recode(value), refund_id],
            )


def _recode_payouts(apps: StateApps, recode: Callable[[str], str]) -> None:
    closing_model = apps.get_model("collection", "AccountClosing")
    for closing in closing_model.objects.exclude(payout={}).iterator(chunk_size=BATCH):
        value = closing.payout.get("payee_bank_account", "")
        if value:
            closing.payout = {**closing.payout, "payee_bank_account": recode(value)}
            closing.save(update_fields=["payout"])


def encrypt_bank_accounts(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _recode_refunds(schema_editor, tenancy.fields.encrypt)
    _recode_payouts(apps, tenancy.fields.encrypt)


def decrypt_bank_accounts(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _recode_refunds(schema_editor, tenancy.fields.decrypt)
    _recode_payouts(apps, tenancy.fields.decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("collection", "0005_document_prints"),
    ]

    operations = [
        migrations.AddField(
            model_name="deposit",
            name="external_reference",
            field=models.CharField(
                blank=True,
                help_text="The card terminal's slip reference of a card deposit.",
                max_length=64,
                verbose_name="external reference",
            ),
        ),
        migrations.AddField(
            model_name="deposit",
            name="shift",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The cashier's shift the deposit was taken in (日结).",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="collection.shift",
            ),
        ),
        migrations.AddIndex(
            model_name="deposit",
            index=models.Index(
                condition=models.Q(("shift__isnull", False)),
                fields=["tenant", "shift"],
                name="deposit_shift",
            ),
        ),
        migrations.AlterField(
            model_name="refund",
            name="payee_bank_account",
            field=tenancy.fields.EncryptedCharField(
                blank=True, default="", verbose_name="customer's bank account"
            ),
        ),
        migrations.RunPython(encrypt_bank_accounts, decrypt_bank_accounts, elidable=False),
    ]
