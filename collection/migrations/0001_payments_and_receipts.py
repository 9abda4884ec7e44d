"""Payments, their allocations and reversals, receipts and their reprints, and failed payment
attempts: append-only tables (triggers refuse changes and deletes on PostgreSQL)."""

import django.db.models.deletion
import django.db.models.expressions
import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0009_bill_site_period_covers_accounts'),
        ('customers', '0002_initial'),
        ('ledger', '0004_collection_ledger_accounts'),
        ('tenancy', '0006_calendar_day_unique_message'),
    ]

    operations = [
        migrations.CreateModel(
            name='Payment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(choices=[('counter_cash', 'Counter, cash'), ('counter_card', 'Counter, bank card'), ('bank_collection', 'Bank collection (代收)'), ('bank_debit', 'Bank direct debit (代扣)'), ('online', 'Online payment'), ('terminal', 'Self-service terminal'), ('voucher', 'Recharge card')], max_length=16, verbose_name='channel')),
                ('amount', models.DecimalField(decimal_places=2, max_digits=16, verbose_name='amount')),
                ('principal', models.DecimalField(decimal_places=2, help_text="Allocated to bills' principal.", max_digits=16, verbose_name="bills' principal paid")),
                ('late_fees', models.DecimalField(decimal_places=2, help_text="Allocated to bills' late fees.", max_digits=16, verbose_name='late fees paid')),
                ('credit_used', models.DecimalField(decimal_places=2, help_text="The account's credit allocated with the payment.", max_digits=16, verbose_name='credit used')),
                ('surplus', models.DecimalField(decimal_places=2, help_text='To the wallet: a prepaid balance, or credit on a postpaid account.', max_digits=16, verbose_name='surplus')),
                ('external_reference', models.CharField(blank=True, help_text="The bank's, provider's or terminal's own reference of the payment.", max_length=64, verbose_name='external reference')),
                ('provider', models.CharField(blank=True, help_text='wechat, alipay, …', max_length=32, verbose_name='online provider')),
                ('source', models.CharField(help_text='Who sent it: a cashier (user:12), an API client (client:3), an online provider (provider:wechat). Idempotency keys are unique per source.', max_length=48, verbose_name='source')),
                ('idempotency_key', models.CharField(max_length=64, verbose_name='idempotency key')),
                ('digest', models.CharField(help_text='Hash of the request, to refuse a key reused for another.', max_length=64)),
                ('paid_on', models.DateField(help_text="In the tenant's time zone.", verbose_name='business day')),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='received at')),
                ('actor_kind', models.CharField(max_length=16)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_label', models.CharField(max_length=200, verbose_name='taken by')),
                ('account', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='customers.account')),
                ('entry', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.journalentry')),
                ('site', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.site')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'payment',
                'verbose_name_plural': 'payments',
            },
        ),
        migrations.CreateModel(
            name='PaymentAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('outcome', models.CharField(choices=[('invalid', 'Invalid request'), ('refused', 'Refused by a rule'), ('conflict', 'Idempotency key reused for another payment'), ('rejected', 'Rejected by the bank or provider')], max_length=16, verbose_name='outcome')),
                ('code', models.CharField(max_length=64, verbose_name='code')),
                ('reason', models.CharField(max_length=500, verbose_name='reason')),
                ('fields', models.JSONField(blank=True, default=dict, verbose_name='field errors')),
                ('channel', models.CharField(blank=True, max_length=32, verbose_name='channel')),
                ('account_number', models.CharField(blank=True, max_length=32, verbose_name='account number')),
                ('amount', models.CharField(blank=True, max_length=32, verbose_name='amount')),
                ('idempotency_key', models.CharField(blank=True, max_length=64, verbose_name='idempotency key')),
                ('external_reference', models.CharField(blank=True, max_length=64, verbose_name='external reference')),
                ('source', models.CharField(blank=True, max_length=48, verbose_name='source')),
                ('request_id', models.CharField(blank=True, max_length=64)),
                ('actor_kind', models.CharField(max_length=16)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_label', models.CharField(max_length=200, verbose_name='by')),
                ('attempted_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='attempted at')),
                ('account', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='customers.account')),
                ('payment', models.ForeignKey(blank=True, db_index=False, help_text='The payment posted first under the same key.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='collection.payment')),
                ('site', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.site')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'payment attempt',
                'verbose_name_plural': 'payment attempts',
            },
        ),
        migrations.CreateModel(
            name='PaymentReversal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reason', models.CharField(max_length=300, verbose_name='reason')),
                ('reversed_on', models.DateField(verbose_name='business day')),
                ('reversed_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('actor_kind', models.CharField(max_length=16)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_label', models.CharField(max_length=200, verbose_name='reversed by')),
                ('entry', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.journalentry')),
                ('payment', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='reversals', to='collection.payment')),
                ('site', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.site')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'payment reversal',
                'verbose_name_plural': 'payment reversals',
            },
        ),
        migrations.CreateModel(
            name='PaymentAllocation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('late_fee', models.DecimalField(decimal_places=2, max_digits=16, verbose_name='late fee')),
                ('principal', models.DecimalField(decimal_places=2, max_digits=16, verbose_name='principal')),
                ('account', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='customers.account')),
                ('bill', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.bill')),
                ('opening', models.ForeignKey(blank=True, db_index=False, help_text='The go-live arrears, paid like the oldest bill.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.openingbalance')),
                ('payment', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='allocations', to='collection.payment')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
                ('reversal', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='allocations', to='collection.paymentreversal')),
            ],
            options={
                'verbose_name': 'payment allocation',
                'verbose_name_plural': 'payment allocations',
            },
        ),
        migrations.CreateModel(
            name='Receipt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveBigIntegerField(verbose_name='receipt number')),
                ('issued_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='issued at')),
                ('payment', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='receipts', to='collection.payment')),
                ('site', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.site')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'receipt',
                'verbose_name_plural': 'receipts',
            },
        ),
        migrations.CreateModel(
            name='ReceiptPrint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('copy', models.PositiveIntegerField(verbose_name='reprint number')),
                ('printed_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('actor_kind', models.CharField(max_length=16)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_label', models.CharField(max_length=200, verbose_name='printed by')),
                ('receipt', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='prints', to='collection.receipt')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'receipt reprint',
                'verbose_name_plural': 'receipt reprints',
            },
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(fields=['tenant', 'id'], name='payment_tenant_id'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(fields=['tenant', 'account', 'id'], name='payment_account'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(fields=['tenant', 'paid_on'], name='payment_paid_on'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.UniqueConstraint(fields=('tenant', 'channel', 'source', 'idempotency_key'), name='payment_idempotency_key'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='payment_positive'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.CheckConstraint(condition=models.Q(('credit_used__gte', 0), ('late_fees__gte', 0), ('principal__gte', 0), ('surplus__gte', 0)), name='payment_parts_not_negative'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('principal'), '+', models.F('late_fees')), '+', models.F('surplus')), '-', models.F('credit_used')), '-', models.Value(Decimal('0.005')))), ('amount__lt', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('principal'), '+', models.F('late_fees')), '+', models.F('surplus')), '-', models.F('credit_used')), '+', models.Value(Decimal('0.005'))))), name='payment_parts_add_up'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='payment',
            trigger=pgtrigger.compiler.Trigger(name='payment_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='bab05fb1724775ce03cf37af8247d1bb9f62af83', operation='UPDATE OR DELETE', pgid='pgtrigger_payment_append_only_30d3c', table='collection_payment', when='BEFORE')),
        ),
        migrations.AddIndex(
            model_name='paymentattempt',
            index=models.Index(fields=['tenant', 'id'], name='payment_attempt_tenant_id'),
        ),
        migrations.AddIndex(
            model_name='paymentattempt',
            index=models.Index(fields=['tenant', 'account', 'id'], name='payment_attempt_account'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='paymentattempt',
            trigger=pgtrigger.compiler.Trigger(name='payment_attempt_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='ad1e18da2248772ecade322d6d3a43147e7be0b3', operation='UPDATE OR DELETE', pgid='pgtrigger_payment_attempt_append_only_58118', table='collection_paymentattempt', when='BEFORE')),
        ),
        migrations.AddConstraint(
            model_name='paymentreversal',
            constraint=models.UniqueConstraint(fields=('tenant', 'payment'), name='payment_reversed_once'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='paymentreversal',
            trigger=pgtrigger.compiler.Trigger(name='payment_reversal_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='81fd1ec5c172930f126364beba4d5538dfb09518', operation='UPDATE OR DELETE', pgid='pgtrigger_payment_reversal_append_only_14265', table='collection_paymentreversal', when='BEFORE')),
        ),
        migrations.AddIndex(
            model_name='paymentallocation',
            index=models.Index(fields=['tenant', 'account', 'id'], name='allocation_account'),
        ),
        migrations.AddIndex(
            model_name='paymentallocation',
            index=models.Index(fields=['tenant', 'payment'], name='allocation_payment'),
        ),
        migrations.AddConstraint(
            model_name='paymentallocation',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('bill__isnull', False), ('opening__isnull', True)), models.Q(('bill__isnull', True), ('opening__isnull', False)), _connector='OR'), name='allocation_one_item'),
        ),
        migrations.AddConstraint(
            model_name='paymentallocation',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('late_fee__gte', 0), ('principal__gte', 0), ('reversal__isnull', True)), models.Q(('late_fee__lte', 0), ('principal__lte', 0), ('reversal__isnull', False)), _connector='OR'), name='allocation_sign'),
        ),
        migrations.AddConstraint(
            model_name='paymentallocation',
            constraint=models.CheckConstraint(condition=models.Q(('late_fee', 0), ('principal', 0), _negated=True), name='allocation_not_zero'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='paymentallocation',
            trigger=pgtrigger.compiler.Trigger(name='payment_allocation_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='911a2d2fea07a5b2e913b1d1ec0b99a91c8e22f7', operation='UPDATE OR DELETE', pgid='pgtrigger_payment_allocation_append_only_74b53', table='collection_paymentallocation', when='BEFORE')),
        ),
        migrations.AddIndex(
            model_name='receipt',
            index=models.Index(fields=['tenant', 'id'], name='receipt_tenant_id'),
        ),
        migrations.AddConstraint(
            model_name='receipt',
            constraint=models.UniqueConstraint(fields=('tenant', 'number'), name='receipt_number'),
        ),
        migrations.AddConstraint(
            model_name='receipt',
            constraint=models.UniqueConstraint(fields=('tenant', 'payment'), name='receipt_per_payment'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='receipt',
            trigger=pgtrigger.compiler.Trigger(name='receipt_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='f614e6192797700d82738652b53ee787ef3fac70', operation='UPDATE OR DELETE', pgid='pgtrigger_receipt_append_only_d778a', table='collection_receipt', when='BEFORE')),
        ),
        migrations.AddConstraint(
            model_name='receiptprint',
            constraint=models.UniqueConstraint(fields=('tenant', 'receipt', 'copy'), name='receipt_reprint'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='receiptprint',
            trigger=pgtrigger.compiler.Trigger(name='receipt_print_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='1fc65feb6c16cf334eea01c0aa5e7f93f8f940bc', operation='UPDATE OR DELETE', pgid='pgtrigger_receipt_print_append_only_1b13c', table='collection_receiptprint', when='BEFORE')),
        ),
    ]
