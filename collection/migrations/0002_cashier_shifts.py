"""Cashier shifts (日结) with their float, count and differences; cash hand-overs to the bank;
holiday cash approvals; the tenant's collection policy; a counter payment's shift."""


import django.db.models.deletion
import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('collection', '0001_payments_and_receipts'),
        ('customers', '0002_initial'),
        ('ledger', '0004_collection_ledger_accounts'),
        ('tenancy', '0006_calendar_day_unique_message'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CashApproval',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cashier_label', models.CharField(max_length=200, verbose_name='cashier')),
                ('amount', models.DecimalField(decimal_places=2, help_text='The most the payment may be.', max_digits=16, verbose_name='amount')),
                ('business_day', models.DateField(verbose_name='business day')),
                ('reason', models.CharField(max_length=300, verbose_name='reason')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='approved at')),
                ('actor_kind', models.CharField(max_length=16)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_label', models.CharField(max_length=200, verbose_name='approved by')),
                ('used_at', models.DateTimeField(blank=True, null=True, verbose_name='used at')),
                ('account', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='customers.account')),
                ('cashier', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('payment', models.ForeignKey(blank=True, db_index=False, help_text='The payment that used the approval.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='collection.payment')),
                ('site', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.site')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'holiday cash approval',
                'verbose_name_plural': 'holiday cash approvals',
            },
        ),
        migrations.CreateModel(
            name='CashHandover',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cashier_label', models.CharField(max_length=200, verbose_name='cashier')),
                ('amount', models.DecimalField(decimal_places=2, max_digits=16, verbose_name='amount')),
                ('bank', models.CharField(help_text="The bank's code: icbc, ccb…", max_length=32, verbose_name='bank')),
                ('slip_reference', models.CharField(max_length=64, verbose_name='bank slip')),
                ('handed_on', models.DateField(verbose_name='handed over on')),
                ('recorded_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='recorded at')),
                ('actor_kind', models.CharField(max_length=16)),
                ('actor_id', models.BigIntegerField(blank=True, null=True)),
                ('actor_label', models.CharField(max_length=200, verbose_name='recorded by')),
                ('cashier', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('entry', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.journalentry')),
                ('site', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.site')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'cash hand-over',
                'verbose_name_plural': 'cash hand-overs',
            },
        ),
        migrations.CreateModel(
            name='CollectionPolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('holiday_cash_cap', models.DecimalField(decimal_places=2, default=Decimal('5000.00'), help_text='The most a cash top-up may be when the bank is closed.', max_digits=16, verbose_name='holiday cash cap')),
                ('holiday_cash_approval', models.BooleanField(default=True, help_text="A cash top-up when the bank is closed needs a supervisor's approval.", verbose_name='holiday cash needs approval')),
                ('tenant', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'collection policy',
                'verbose_name_plural': 'collection policies',
            },
        ),
        migrations.CreateModel(
            name='Shift',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cashier_label', models.CharField(max_length=200, verbose_name='cashier')),
                ('state', models.CharField(choices=[('open', 'Open'), ('pending', 'Difference awaiting approval'), ('recount', 'Count rejected, to count again'), ('closed', 'Closed')], default='open', max_length=16, verbose_name='state')),
                ('float_amount', models.DecimalField(decimal_places=2, help_text='备用金: change at opening.', max_digits=16, verbose_name='float')),
                ('opened_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='opened at')),
                ('drawer_start', models.DecimalField(decimal_places=2, help_text="The cashier's cash movements before the shift (ledger), its starting mark.", max_digits=16)),
                ('closed_at', models.DateTimeField(blank=True, null=True, verbose_name='closed at')),
                ('drawer_end', models.DecimalField(blank=True, decimal_places=2, max_digits=16, null=True)),
                ('expected_cash', models.DecimalField(blank=True, decimal_places=2, max_digits=16, null=True, verbose_name='expected cash')),
                ('expected_card', models.DecimalField(blank=True, decimal_places=2, max_digits=16, null=True, verbose_name='expected card')),
                ('cash_payments', models.PositiveIntegerField(blank=True, null=True, verbose_name='cash payments')),
                ('card_payments', models.PositiveIntegerField(blank=True, null=True, verbose_name='card payments')),
                ('counted_cash', models.DecimalField(blank=True, decimal_places=2, max_digits=16, null=True, verbose_name='counted cash')),
                ('counted_card', models.DecimalField(blank=True, decimal_places=2, help_text="The card terminal's settlement total.", max_digits=16, null=True, verbose_name='card settlement')),
                ('difference_cash', models.DecimalField(blank=True, decimal_places=2, help_text='Counted less expected.', max_digits=16, null=True, verbose_name='cash difference')),
                ('difference_card', models.DecimalField(blank=True, decimal_places=2, max_digits=16, null=True, verbose_name='card difference')),
                ('counted_at', models.DateTimeField(blank=True, null=True, verbose_name='counted at')),
                ('count_note', models.CharField(blank=True, max_length=300, verbose_name='count note')),
                ('counted_by_kind', models.CharField(blank=True, max_length=16)),
                ('counted_by_id', models.BigIntegerField(blank=True, null=True)),
                ('counted_by_label', models.CharField(blank=True, max_length=200, verbose_name='counted by')),
                ('decision_note', models.CharField(blank=True, max_length=300, verbose_name="supervisor's note")),
                ('decided_at', models.DateTimeField(blank=True, null=True, verbose_name='decided at')),
                ('decided_by_kind', models.CharField(blank=True, max_length=16)),
                ('decided_by_id', models.BigIntegerField(blank=True, null=True)),
                ('decided_by_label', models.CharField(blank=True, max_length=200, verbose_name='decided by')),
                ('cashier', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('difference_entry', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.journalentry')),
                ('site', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.site')),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'verbose_name': 'cashier shift',
                'verbose_name_plural': 'cashier shifts',
            },
        ),
        migrations.AddField(
            model_name='payment',
            name='shift',
            field=models.ForeignKey(blank=True, db_index=False, help_text="The cashier's shift a counter payment was taken in.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='payments', to='collection.shift'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('shift__isnull', False)), fields=['tenant', 'shift'], name='payment_shift'),
        ),
        migrations.AddIndex(
            model_name='cashapproval',
            index=models.Index(fields=['tenant', 'id'], name='cash_approval_tenant_id'),
        ),
        migrations.AddConstraint(
            model_name='cashapproval',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='cash_approval_positive'),
        ),
        migrations.AddConstraint(
            model_name='cashapproval',
            constraint=models.UniqueConstraint(condition=models.Q(('payment__isnull', False)), fields=('tenant', 'payment'), name='cash_approval_used_once'),
        ),
        migrations.AddIndex(
            model_name='cashhandover',
            index=models.Index(fields=['tenant', 'id'], name='cash_handover_tenant_id'),
        ),
        migrations.AddConstraint(
            model_name='cashhandover',
            constraint=models.UniqueConstraint(fields=('tenant', 'bank', 'slip_reference'), name='cash_handover_slip'),
        ),
        migrations.AddConstraint(
            model_name='cashhandover',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='cash_handover_positive'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='cashhandover',
            trigger=pgtrigger.compiler.Trigger(name='cash_handover_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='ee70a5834fcb8a902d7342bee888c6fa155d5396', operation='UPDATE OR DELETE', pgid='pgtrigger_cash_handover_append_only_ba121', table='collection_cashhandover', when='BEFORE')),
        ),
        migrations.AddConstraint(
            model_name='collectionpolicy',
            constraint=models.CheckConstraint(condition=models.Q(('holiday_cash_cap__gt', 0)), name='collection_policy_cap'),
        ),
        migrations.AddIndex(
            model_name='shift',
            index=models.Index(fields=['tenant', 'id'], name='shift_tenant_id'),
        ),
        migrations.AddIndex(
            model_name='shift',
            index=models.Index(fields=['tenant', 'cashier', 'id'], name='shift_cashier'),
        ),
        migrations.AddConstraint(
            model_name='shift',
            constraint=models.UniqueConstraint(condition=models.Q(('state', 'open')), fields=('tenant', 'cashier'), name='shift_one_open_per_cashier'),
        ),
        migrations.AddConstraint(
            model_name='shift',
            constraint=models.CheckConstraint(condition=models.Q(('float_amount__gte', 0)), name='shift_float'),
        ),
    ]
