"""The customer pages: finding accounts (by number, name, mobile, meter serial) with personal
data masked, revealing it (audited), the account and customer pages, and the forms that
register and change customers, premises, accounts and contacts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from customers.models import Account, Contact, Customer, Premise
from ledger.models import LedgerKind
from ledger.services import customer_ledger_accounts, post_entry, tenant_ledger_account
from tenancy.models import AuditEvent
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db

MOBILE = "13912345678"


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _events(world: World, action: str) -> list[AuditEvent]:
    with world.a.active():
        return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _found(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [account.number for account in response.context["listing"].page()]


# --- finding ---------------------------------------------------------------------------------


def test_a_cashier_finds_an_account_by_its_number(world: World) -> None:
    wanted, _other = world.a.account(), world.a.account()
    response = _client(world.bob).get("/console/customers/", {"number": wanted.number})
    assert response.status_code == 200
    assert _found(response) == [wanted.number]


def test_a_search_by_mobile_shows_the_number_masked_and_is_audited(world: World) -> None:
    account = world.a.account()
    world.a.contact(account.customer, value=MOBILE)
    world.a.account()
    response = _client(world.alice).get("/console/customers/", {"mobile": "139 1234 5678"})
    assert response.status_code == 200
    assert _found(response) == [account.number]
    page = response.content.decode()
    assert "+86 139****5678" in page and MOBILE not in page
    searched = _events(world, "customer.pii_searched")
    assert len(searched) == 1 and (searched[0].after or {})["searched_for"] == "+86 139****5678"


def test_a_mistyped_mobile_number_answers_400_with_the_reason(world: World) -> None:
    response = _client(world.alice).get("/console/customers/", {"mobile": "12345"})
    assert response.status_code == 400
    assert response.context["listing"].filters.errors["mobile"]
    assert b'value="12345"' in response.content
    assert _events(world, "customer.pii_searched") == []


def test_a_role_that_may_not_search_by_mobile_gets_403(world: World) -> None:
    inspector = world.a.staff((Role.INSPECTOR, None))
    client = _client(inspector)
    assert client.get("/console/customers/").status_code == 200
    assert b'name="mobile"' not in client.get("/console/customers/").content
    assert client.get("/console/customers/", {"mobile": MOBILE}).status_code == 403


def test_too_many_searches_by_mobile_answer_429(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    rest = settings.REST_FRAMEWORK
    settings.REST_FRAMEWORK = {
        **rest,
        "DEFAULT_THROTTLE_RATES": {**rest["DEFAULT_THROTTLE_RATES"], "pii_search": "2/min"},
    }
    client = _client(world.carol)
    codes = [client.get("/console/customers/", {"mobile": MOBILE}).status_code for _ in range(4)]
    assert codes[-1] == 429


def test_a_meter_serial_finds_the_account_it_measures(world: World) -> None:
    account = world.a.account()
    meter = world.a.meter(on_gateway=False, account=account)
    world.a.meter(on_gateway=False)
    response = _client(world.bob).get("/console/customers/", {"serial": meter.serial_number})
    assert _found(response) == [account.number]


def test_a_name_finds_every_account_of_the_customers_so_named(world: World) -> None:
    first = world.a.account(customer=world.a.customer(name="李四"))
    world.a.account()
    response = _client(world.bob).get("/console/customers/", {"name": "李"})
    assert _found(response) == [first.number]


def test_a_site_limited_person_finds_nothing_of_other_sites(world: World) -> None:
    outside = world.a.account(world.a.sites[0])
    inside = world.a.account(world.a.sites[1])
    response = _client(world.carol).get("/console/customers/")
    assert _found(response) == [inside.number]
    assert outside.number not in response.content.decode()


def test_the_search_costs_the_same_queries_for_3_or_30_accounts(world: World) -> None:
    def queries() -> int:
        client = _client(world.bob)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/console/customers/").status_code == 200
        return len(captured)

    for _ in range(3):
        world.a.contact(world.a.account().customer)
    few = queries()
    for _ in range(27):
        world.a.contact(world.a.account().customer)
    assert queries() == few


def test_the_csv_export_masks_personal_data_and_is_audited(world: World) -> None:
    account = world.a.account()
    response = _client(world.alice).get("/console/customers/", {"export": "csv"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert account.number in text
    assert account.customer.id_number not in text
    assert account.customer.id_number_masked in text
    assert len(_events(world, "export.downloaded")) == 1


def test_a_meter_reader_may_not_search_customers(world: World) -> None:
    reader = world.a.staff((Role.METER_READER, None))
    assert _client(reader).get("/console/customers/").status_code == 403


# --- revealing -------------------------------------------------------------------------------


def test_revealing_shows_the_numbers_and_records_who_saw_them(world: World) -> None:
    customer = world.a.customer()
    world.a.contact(customer, value=MOBILE)
    response = _client(world.alice).post(
        f"/console/customers/{customer.pk}/reveal/", {"fragment": "pii-7"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert customer.id_number in page and "+8613912345678" in page
    assert 'id="pii-7"' in page and "<html" not in page
    revealed = _events(world, "customer.pii_revealed")
    assert [event.object_id for event in revealed] == [str(customer.pk)]
    assert revealed[0].actor_label == "alice"


def test_revealing_needs_a_post(world: World) -> None:
    customer = world.a.customer()
    assert _client(world.alice).get(f"/console/customers/{customer.pk}/reveal/").status_code == 405
    assert _events(world, "customer.pii_revealed") == []


def test_an_inspector_may_not_reveal(world: World) -> None:
    customer = world.a.customer()
    inspector = world.a.staff((Role.INSPECTOR, None))
    assert _client(inspector).post(f"/console/customers/{customer.pk}/reveal/").status_code == 403


def test_revealing_another_tenants_or_sites_customer_answers_404(world: World) -> None:
    theirs = world.b.customer()
    other_site = world.a.customer(world.a.sites[0])
    assert _client(world.alice).post(f"/console/customers/{theirs.pk}/reveal/").status_code == 404
    assert (
        _client(world.carol).post(f"/console/customers/{other_site.pk}/reveal/").status_code == 404
    )
    assert _events(world, "customer.pii_revealed") == []


# --- the account and customer pages ---------------------------------------------------------


def _billed_and_paid(world: World, account: Account) -> None:
    with world.a.active():
        tenant = world.a.tenant
        receivable = customer_ledger_accounts(tenant, LedgerKind.RECEIVABLE, [account.pk])
        revenue = tenant_ledger_account(tenant, LedgerKind.REVENUE, utility="electricity")
        cash = tenant_ledger_account(tenant, LedgerKind.CLEARING, name="cash")
        post_entry(
            world.a.system,
            source_type="bill",
            source_id="B1",
            lines=[(receivable[account.pk], Decimal("88.00")), (revenue, Decimal("-88.00"))],
        )
        post_entry(
            world.a.system,
            source_type="payment",
            source_id="P1",
            lines=[(cash, Decimal("30.00")), (receivable[account.pk], Decimal("-30.00"))],
        )


def test_the_account_page_shows_premise_masked_customer_meters_balance_and_history(
    world: World,
) -> None:
    account = world.a.account()
    world.a.contact(account.customer, value=MOBILE)
    meter = world.a.meter(on_gateway=False, account=account)
    _billed_and_paid(world, account)
    response = _client(world.alice).get(f"/console/accounts/{account.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert account.premise.address in page and meter.serial_number in page
    assert account.customer.id_number_masked in page and account.customer.id_number not in page
    assert "+86 139****5678" in page and MOBILE not in page
    assert response.context["ledger"].receivable == Decimal("58.00")
    assert "¥58.00" in page and "payment:P1" in page
    assert [event.action for event in response.context["history"]] == ["account.opened"]


def test_the_account_page_links_its_bills(world: World) -> None:
    bill = world.a.bill()
    response = _client(world.alice).get(f"/console/accounts/{bill.account_id}/")
    assert f'href="/console/bills/{bill.pk}/"' in response.content.decode()


def test_a_cashier_sees_the_balance_but_not_the_audit_history(world: World) -> None:
    account = world.a.account()
    response = _client(world.bob).get(f"/console/accounts/{account.pk}/")
    assert response.status_code == 200
    assert "ledger" in response.context and "history" not in response.context


def test_a_meter_reader_sees_the_account_without_the_customer(world: World) -> None:
    account = world.a.account()
    reader = world.a.staff((Role.METER_READER, None))
    response = _client(reader).get(f"/console/accounts/{account.pk}/")
    assert response.status_code == 200
    assert response.context["customer"] is None
    assert account.customer.name not in response.content.decode()


def test_another_tenants_account_and_customer_answer_404(world: World) -> None:
    account = world.b.account()
    client = _client(world.alice)
    assert client.get(f"/console/accounts/{account.pk}/").status_code == 404
    assert client.get(f"/console/customers/{account.customer_id}/").status_code == 404


def test_an_account_of_a_site_outside_the_grant_answers_404(world: World) -> None:
    account = world.a.account(world.a.sites[0])
    client = _client(world.carol)
    assert client.get(f"/console/accounts/{account.pk}/").status_code == 404
    assert client.get(f"/console/customers/{account.customer_id}/").status_code == 404
    assert client.get(f"/console/accounts/{account.pk}/edit/").status_code == 404


def test_the_customer_page_lists_accounts_and_masked_contacts(world: World) -> None:
    account = world.a.account()
    world.a.contact(account.customer, value=MOBILE)
    response = _client(world.bob).get(f"/console/customers/{account.customer_id}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert account.number in page and "+86 139****5678" in page and MOBILE not in page


# --- forms -----------------------------------------------------------------------------------


def test_registering_a_customer_writes_it_through_the_service(world: World) -> None:
    from tests.world import identity_number

    number = identity_number()
    response = _client(world.alice).post(
        "/console/customers/new/",
        {"site": world.a.sites[0].pk, "kind": "person", "name": "王五", "id_number": number},
    )
    with world.a.active():
        customer = Customer.objects.get(name="王五")
    assert (
        response.status_code == 302 and response["Location"] == f"/console/customers/{customer.pk}/"
    )
    assert customer.id_number == number
    assert len(_events(world, "customer.registered")) == 1


def test_a_wrong_identity_number_is_refused_by_field_and_nothing_is_written(world: World) -> None:
    response = _client(world.alice).post(
        "/console/customers/new/",
        {"site": world.a.sites[0].pk, "kind": "person", "name": "王五", "id_number": "110105"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["id_number"]
    assert 'value="王五"' in response.content.decode()
    with world.a.active():
        assert not Customer.objects.filter(name="王五").exists()


def test_a_site_limited_person_cannot_register_a_customer_at_another_site(world: World) -> None:
    response = _client(world.carol).post(
        "/console/customers/new/", {"site": world.a.sites[0].pk, "kind": "person", "name": "赵六"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["site"]


def test_editing_a_customer_keeps_the_identity_number_left_empty(world: World) -> None:
    customer = world.a.customer()
    response = _client(world.alice).post(
        f"/console/customers/{customer.pk}/edit/",
        {"site": customer.site_id, "kind": "person", "name": "张三丰", "id_number": ""},
    )
    assert response.status_code == 302
    with world.a.active():
        customer.refresh_from_db()
    assert customer.name == "张三丰" and customer.id_number


def test_editing_a_customer_to_an_empty_name_is_refused_on_the_name(world: World) -> None:
    customer = world.a.customer()
    with world.a.active():
        name = Customer.objects.get(pk=customer.pk).name
    response = _client(world.alice).post(
        f"/console/customers/{customer.pk}/edit/",
        {"site": customer.site_id, "kind": "person", "name": "", "id_number": ""},
    )
    assert response.status_code == 400 and response.context["form"].errors["name"]
    with world.a.active():
        assert Customer.objects.get(pk=customer.pk).name == name


def test_a_cashier_may_not_edit_an_account(world: World) -> None:
    account = world.a.account()
    assert _client(world.bob).get(f"/console/accounts/{account.pk}/edit/").status_code == 403


def test_opening_an_account_at_a_new_premise(world: World) -> None:
    customer = world.a.customer()
    client = _client(world.alice)
    response = client.post(
        f"/console/premises/new/?customer={customer.pk}",
        {"site": customer.site_id, "address": "和平路 8 号", "room": "101", "floor_area": ""},
    )
    with world.a.active():
        premise = Premise.objects.get(address="和平路 8 号")
    assert (
        response["Location"]
        == f"/console/customers/{customer.pk}/accounts/new/?premise={premise.pk}"
    )
    response = client.post(
        f"/console/customers/{customer.pk}/accounts/new/",
        {
            "premise": premise.pk,
            "utility": "electricity",
            "payment_mode": "prepaid",
            "customer_class": "residential",
            "household_size": "3",
        },
    )
    with world.a.active():
        account = Account.objects.get(premise=premise)
    assert response["Location"] == f"/console/accounts/{account.pk}/"
    assert (account.customer_id, account.household_size) == (customer.pk, 3)


def test_a_wrong_account_form_keeps_what_was_typed(world: World) -> None:
    customer = world.a.customer()
    premise = world.a.premise()
    response = _client(world.alice).post(
        f"/console/customers/{customer.pk}/accounts/new/",
        {
            "premise": premise.pk,
            "utility": "electricity",
            "payment_mode": "prepaid",
            "customer_class": "residential",
            "household_size": "0",
            "number": "1234567",
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "household_size" in errors and "number" in errors
    assert 'value="1234567"' in response.content.decode()
    with world.a.active():
        assert not Account.objects.filter(premise=premise).exists()


def test_closing_an_account_through_its_edit_form(world: World) -> None:
    account = world.a.account()
    response = _client(world.alice).post(
        f"/console/accounts/{account.pk}/edit/",
        {
            "premise": account.premise_id,
            "status": "closed",
            "utility": "electricity",
            "payment_mode": "postpaid",
            "customer_class": "residential",
            "opened_on": "2026-01-01",
            "household_size": "1",
            "contracted_capacity_kva": "",
        },
    )
    assert response.status_code == 302
    with world.a.active():
        account.refresh_from_db()
    assert account.status == "closed" and account.closed_on is not None


def test_clearing_a_premise_room_saves_it_empty(world: World) -> None:
    premise = world.a.premise()
    response = _client(world.alice).post(
        f"/console/premises/{premise.pk}/edit/",
        {"site": premise.site_id, "address": premise.address, "room": "", "floor_area": ""},
    )
    assert response.status_code == 302
    with world.a.active():
        premise.refresh_from_db()
    assert (premise.room, premise.floor_area) == ("", None)


def test_adding_a_contact_and_refusing_a_bad_number(world: World) -> None:
    customer = world.a.customer()
    client = _client(world.bob)
    bad = client.post(
        f"/console/customers/{customer.pk}/contacts/new/",
        {"kind": "mobile", "value": "555", "source": "counter"},
    )
    assert bad.status_code == 400 and bad.context["form"].errors["value"]
    good = client.post(
        f"/console/customers/{customer.pk}/contacts/new/",
        {"kind": "mobile", "value": MOBILE, "source": "counter", "sms_consent": "1"},
    )
    assert good.status_code == 302
    with world.a.active():
        contact = Contact.objects.get(customer=customer)
    assert contact.value == "+86" + MOBILE and contact.sms_consent


def test_editing_a_contact_without_a_value_keeps_it(world: World) -> None:
    contact = world.a.contact(value=MOBILE)
    response = _client(world.bob).post(
        f"/console/contacts/{contact.pk}/edit/",
        {"kind": "mobile", "value": "", "source": "field_visit", "is_primary": "1"},
    )
    assert response.status_code == 302
    with world.a.active():
        contact.refresh_from_db()
    assert (contact.value, contact.source, contact.is_primary) == (
        "+86" + MOBILE,
        "field_visit",
        True,
    )


def test_removing_a_contact_asks_first(world: World) -> None:
    contact = world.a.contact(value=MOBILE)
    client = _client(world.bob)
    confirm = client.get(f"/console/contacts/{contact.pk}/remove/")
    assert confirm.status_code == 200 and confirm.context["consequences"]
    assert client.post(f"/console/contacts/{contact.pk}/remove/").status_code == 302
    with world.a.active():
        assert not Contact.objects.filter(pk=contact.pk).exists()
    assert len(_events(world, "contact.removed")) == 1


def test_another_sites_contact_cannot_be_edited_or_removed(world: World) -> None:
    contact = world.a.contact(world.a.customer(world.a.sites[0]))
    client = _client(world.carol)
    assert client.get(f"/console/contacts/{contact.pk}/edit/").status_code == 404
    assert client.post(f"/console/contacts/{contact.pk}/remove/").status_code == 404
