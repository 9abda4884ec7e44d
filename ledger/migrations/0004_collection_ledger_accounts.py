"""The collect stage's ledger accounts: the kinds it posts to (cash on hand, voucher liability,
customer deposits, refunds payable, late-fee revenue) and the holder that tells one cash or
clearing account from another (a cashier, a bank's or terminal's API client, an online
provider). The tenant-level key gains the holder."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0002_initial'),
        ('ledger', '0003_ledger_account_fillfactor'),
        ('tenancy', '0006_calendar_day_unique_message'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='ledgeraccount',
            name='ledger_account_tenant_unique',
        ),
        migrations.AddField(
            model_name='ledgeraccount',
            name='holder',
            field=models.CharField(blank=True, help_text='Who holds the money of a cash or clearing account: a cashier (user:12), a bank or terminal (client:3), an online provider (provider:wechat) or the card acquirer.', max_length=64, verbose_name='holder'),
        ),
        migrations.AlterField(
            model_name='ledgeraccount',
            name='account',
            field=models.ForeignKey(blank=True, help_text='The customer account of a receivable, wallet or deposit.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='ledger_accounts', to='customers.account'),
        ),
        migrations.AlterField(
            model_name='ledgeraccount',
            name='kind',
            field=models.CharField(choices=[('receivable', 'Customer receivable'), ('wallet', 'Customer wallet'), ('deposit', 'Customer deposit'), ('revenue', 'Revenue'), ('vat_payable', 'VAT payable'), ('clearing', 'Clearing'), ('cash', 'Cash on hand'), ('voucher', 'Voucher liability'), ('refunds_payable', 'Refunds payable'), ('late_fees', 'Late-fee revenue')], max_length=16, verbose_name='kind'),
        ),
        migrations.AddConstraint(
            model_name='ledgeraccount',
            constraint=models.UniqueConstraint(condition=models.Q(('account__isnull', True)), fields=('tenant', 'kind', 'utility', 'component', 'holder'), name='ledger_account_tenant_unique'),
        ),
    ]
