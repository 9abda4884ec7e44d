"""The scoped managers fail closed: no current tenant, no query."""

from collections.abc import Callable

import pytest
from django.db.models import Count, Exists, OuterRef

from customers.models import Account, Customer
from tenancy.context import TenantNotSet, use_tenant
from tenancy.models import Site
from tests.world import World

# Built when the module is imported, with no tenant: it must stay lazy.
ALL_SITES_AT_IMPORT = Site.objects.all()
SITES_NAMED_AT_IMPORT = Site.objects.filter(name__contains="site").order_by("id")

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "evaluate",
    [
        lambda: list(Site.objects.all()),
        lambda: Site.objects.count(),
        lambda: Site.objects.exists(),
        lambda: Site.objects.first(),
        lambda: Site.objects.get(pk=1),
        lambda: list(Site.objects.values_list("id", flat=True)),
        lambda: Site.objects.aggregate(n=Count("id")),
        lambda: Site.objects.update(name="x"),
        lambda: Site.objects.filter(code="nope").delete(),
        lambda: list(Account.dangerously_unscoped.filter(site__in=Site.objects.all())),
        lambda: list(
            Account.dangerously_unscoped.filter(
                Exists(Customer.objects.filter(pk=OuterRef("customer_id")))
            )
        ),
        lambda: list(ALL_SITES_AT_IMPORT.all()),
        lambda: bool(SITES_NAMED_AT_IMPORT.all()),
    ],
    ids=[
        "iterate",
        "count",
        "exists",
        "first",
        "get",
        "values_list",
        "aggregate",
        "update",
        "delete",
        "as_subquery",
        "in_exists",
        "import_time_queryset",
        "import_time_filtered",
    ],
)
def test_querying_a_tenant_owned_model_with_no_current_tenant_raises(
    world: World, evaluate: Callable[[], object]
) -> None:
    with pytest.raises(TenantNotSet):
        evaluate()


def test_querysets_built_at_import_see_the_tenant_of_the_caller(world: World) -> None:
    # .all() gives a fresh queryset, as DRF does with a viewset's class-level queryset.
    with use_tenant(world.a.tenant):
        assert {s.pk for s in ALL_SITES_AT_IMPORT.all()} == {s.pk for s in world.a.sites}
        assert [s.pk for s in SITES_NAMED_AT_IMPORT.all()] == [s.pk for s in world.a.sites]
    with use_tenant(world.b.tenant):
        assert {s.pk for s in ALL_SITES_AT_IMPORT.all()} == {s.pk for s in world.b.sites}


def test_update_and_delete_touch_only_the_current_tenant(world: World) -> None:
    with use_tenant(world.b.tenant):
        changed = Site.objects.update(name="renamed by B")
    assert changed == len(world.b.sites)
    assert not Site.dangerously_unscoped.filter(tenant=world.a.tenant, name="renamed by B").exists()


def test_a_subquery_of_a_scoped_model_is_scoped_too(world: World) -> None:
    account_a = world.a.account()
    with use_tenant(world.b.tenant):
        matched = Account.dangerously_unscoped.filter(customer__in=Customer.objects.all())
        assert account_a not in matched
    with use_tenant(world.a.tenant):
        assert account_a in Account.dangerously_unscoped.filter(customer__in=Customer.objects.all())


def test_the_unscoped_manager_needs_no_tenant(world: World) -> None:
    assert Site.dangerously_unscoped.filter(tenant=world.a.tenant).count() == 2


def test_following_a_foreign_key_needs_no_tenant(world: World) -> None:
    account = world.a.account()
    fetched = Account.dangerously_unscoped.get(pk=account.pk)
    assert fetched.customer.name == "张三"
    assert fetched.site.tenant_id == world.a.tenant.pk
