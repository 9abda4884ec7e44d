"""Fill a bench database with one tenant and N accounts (COPY), and print an API token.

    DATABASE_URL=… python -m bench.seed_accounts N
prints: token first_number last_number first_id last_id
"""

from __future__ import annotations

import io
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402

from customers.identifiers import make_account_number  # noqa: E402
from customers.models import Account, Customer, Premise  # noqa: E402
from tenancy import services  # noqa: E402
from tenancy.context import use_tenant  # noqa: E402
from tenancy.models import Site, Tenant  # noqa: E402
from tenancy.principal import Principal  # noqa: E402
from tenancy.roles import Role  # noqa: E402

HOLDERS = 1000


def seed(accounts: int) -> tuple[str, str, str, int, int]:
    tenant = Tenant.objects.create(name="Bench", slug="bench")
    system = Principal.system(tenant, "bench")
    with use_tenant(tenant), transaction.atomic():
        site = Site.objects.create(tenant=tenant, code="B1", name="bench site")
        customers = Customer.objects.bulk_create(
            Customer(tenant=tenant, site=site, kind="person", name=f"客户{i}")
            for i in range(HOLDERS)
        )
        premises = Premise.objects.bulk_create(
            Premise(tenant=tenant, site=site, address="基准路", room=str(i)) for i in range(HOLDERS)
        )
        rows = io.StringIO()
        for index in range(1, accounts + 1):
            holder = index % HOLDERS
            rows.write(
                f"{tenant.pk}\t{site.pk}\t{customers[holder].pk}\t{premises[holder].pk}\t"
                f"{make_account_number(index)}\telectricity\tpostpaid\tresidential\tactive\t"
                "2026-01-01\t1\tf\n"
            )
        rows.seek(0)
        with connection.cursor() as cursor:
            cursor.copy_expert(
                "COPY customers_account (tenant_id, site_id, customer_id, premise_id, number, "
                "utility, payment_mode, customer_class, status, opened_on, household_size, "
                "minimum_living_support) FROM STDIN",
                rows,
            )
            cursor.execute("ANALYZE customers_account")
        _client, token = services.issue_api_client(
            system, name="bench", grants=[services.GrantSpec(role=Role.CASHIER)]
        )
        ids = Account.objects.order_by("id").values_list("id", flat=True)
        first, last = ids.first(), ids.last()
        assert first is not None and last is not None
        return token, make_account_number(1), make_account_number(accounts), first, last


if __name__ == "__main__":
    print(*seed(int(sys.argv[1])))
