"""The cash over-and-short account kind: where a cashier shift's approved difference goes."""


from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0004_collection_ledger_accounts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='ledgeraccount',
            name='kind',
            field=models.CharField(choices=[('receivable', 'Customer receivable'), ('wallet', 'Customer wallet'), ('deposit', 'Customer deposit'), ('revenue', 'Revenue'), ('vat_payable', 'VAT payable'), ('clearing', 'Clearing'), ('cash', 'Cash on hand'), ('voucher', 'Voucher liability'), ('refunds_payable', 'Refunds payable'), ('late_fees', 'Late-fee revenue'), ('cash_over_short', 'Cash over and short')], max_length=16, verbose_name='kind'),
        ),
    ]
