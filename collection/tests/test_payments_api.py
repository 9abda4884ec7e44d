"""POST /api/v1/payments/ and the lists around it: taking a payment at the counter and from a
bank, idempotent retries, every bad input a 4xx recorded as a failed attempt, what an account
owes, and the other tenant (mallory) and another site's staff (carol) seeing nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from collection.models import Payment, PaymentAttempt, Receipt
from customers.identifiers import make_account_number
from customers.models import Account
from ledger.models import JournalEntry, LedgerAccount, LedgerKind
from tenancy.models import AuditEvent
from tenancy.permissions import second_factor_roles
from tenancy.roles import Role
from tests.world import PASSWORD, World, unique

pytestmark = pytest.mark.django_db

URL = "/api/v1/payments/"


@pytest.fixture(autouse=True)
def _bob_on_shift(world: World) -> None:
    """bob takes counter payments at site A1 in his open shift."""
    world.a.on_shift(world.bob, world.a.sites[0])


def body(target: Account, **fields: Any) -> dict[str, Any]:
    return {
        "account": target.number,
        "channel": "counter_cash",
        "amount": "120.50",
        "idempotency_key": unique("till-1-"),
        **fields,
    }


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_cashier_takes_a_cash_payment_and_the_answer_names_its_receipt(world: World) -> None:
    account = world.a.account()
    bill = world.a.issued_bill(account, "100.00", timezone.localdate() + timedelta(days=10))
    response = world.client_for(world.bob).post(URL, body(account), format="json")
    assert response.status_code == 201, response.content
    paid = response.json()
    assert paid["amount"] == "120.50" and paid["principal"] == "100.00"
    assert paid["surplus"] == "20.50" and paid["state"] == "posted"
    assert paid["allocations"] == [
        {
            "bill": bill.pk,
            "bill_number": bill.number,
            "opening": None,
            "late_fee": "0.00",
            "principal": "100.00",
        }
    ]
    assert paid["actor_label"] == "bob" and paid["account_number"] == account.number
    with world.a.active():
        receipt = Receipt.objects.get(payment_id=paid["id"])
        assert paid["receipt"]["number"] == receipt.display_number
        cash = LedgerAccount.objects.get(kind=LedgerKind.CASH, holder=f"user:{world.bob.pk}")
        assert cash.balance == Decimal("120.50")
        assert AuditEvent.objects.filter(
            action="payment.posted", object_id=str(paid["id"]), actor_id=world.bob.pk
        ).exists()


def test_a_retry_with_the_same_key_returns_the_first_payment_and_posts_nothing_more(
    world: World,
) -> None:
    account = world.a.account()
    request = body(account)
    bob = world.client_for(world.bob)
    first = bob.post(URL, request, format="json")
    again = bob.post(URL, request, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    with world.a.active():
        assert Payment.objects.filter(account=account).count() == 1
        assert JournalEntry.objects.filter(source_type="payment").count() == 1
        assert Receipt.objects.count() == 1


def test_another_payment_under_a_used_key_is_409_and_recorded_for_finance(world: World) -> None:
    account = world.a.account()
    request = body(account)
    bob = world.client_for(world.bob)
    first = bob.post(URL, request, format="json").json()
    clash = bob.post(URL, {**request, "amount": "99.00"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "idempotency_conflict"
    assert "another payment" in clash.json()["error"]["message"]
    with world.a.active():
        assert Payment.objects.count() == 1
        attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.payment_id) == ("conflict", first["id"])
    assert attempt.amount == "99.00"
    finance = world.a.staff((Role.HQ_FINANCE, None))
    listed = world.client_for(finance).get("/api/v1/payment-attempts/").json()["results"]
    assert [row["id"] for row in listed] == [attempt.pk]


def test_the_same_key_from_another_cashier_is_another_payment(world: World) -> None:
    account = world.a.account()
    key = unique("k")
    other = world.a.staff((Role.CASHIER, None))
    world.a.on_shift(other, account.site)
    for user in (world.bob, other):
        response = world.client_for(user).post(
            URL, body(account, idempotency_key=key), format="json"
        )
        assert response.status_code == 201
    with world.a.active():
        assert Payment.objects.filter(idempotency_key=key).count() == 2


def _closed(world: World) -> Account:
    account = world.a.account()
    with world.a.active():
        Account.objects.filter(pk=account.pk).update(status="closed", closed_on=date(2026, 6, 1))
    return account


BAD_INPUTS: dict[str, tuple[Any, str, str]] = {
    # name: (change to a good body, the field at fault, the outcome recorded)
    "three decimals": ({"amount": "10.001"}, "amount", "invalid"),
    "three decimals as a JSON number": ({"amount": Decimal("10.001")}, "amount", "invalid"),
    "zero": ({"amount": "0.00"}, "amount", "invalid"),
    "negative": ({"amount": "-5.00"}, "amount", "invalid"),
    "not a number": ({"amount": "12,5"}, "amount", "invalid"),
    "beyond any payment": ({"amount": "100000000.00"}, "amount", "invalid"),
    "unknown account": ({"account": make_account_number(987654)}, "account", "invalid"),
    "mistyped account": ({"account": "0000000011"}, "account", "invalid"),
    "over-long reference": ({"external_reference": "R" * 65}, "external_reference", "invalid"),
    "missing key": ({"idempotency_key": None}, "idempotency_key", "invalid"),
    "key with spaces": ({"idempotency_key": "a b"}, "idempotency_key", "invalid"),
    "unknown channel": ({"channel": "cheque"}, "channel", "invalid"),
    "a bank's channel at the counter": ({"channel": "bank_collection"}, "channel", "refused"),
    "a recharge card as a payment": ({"channel": "voucher"}, "channel", "refused"),
    "a provider at the counter": ({"provider": "wechat"}, "provider", "refused"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_400_naming_the_field_posts_nothing_and_is_recorded(
    world: World, case: str
) -> None:
    change, field, outcome = BAD_INPUTS[case]
    account = world.a.account()
    request = {k: v for k, v in {**body(account), **change}.items() if v is not None}
    response = world.client_for(world.bob).post(URL, request, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    with world.a.active():
        assert not Payment.objects.exists()
        assert not JournalEntry.objects.filter(source_type="payment").exists()
        assert not Receipt.objects.exists()
        attempt = PaymentAttempt.objects.get()
    assert attempt.outcome == outcome and attempt.actor_id == world.bob.pk
    assert field in attempt.fields and attempt.reason


def test_malformed_json_is_a_400_recorded_as_an_attempt(world: World) -> None:
    response = world.client_for(world.bob).post(
        URL, '{"account": "0000000018", "amount": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    with world.a.active():
        attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.code) == ("invalid", "parse_error")


def test_a_closed_account_takes_no_payment(world: World) -> None:
    account = _closed(world)
    response = world.client_for(world.bob).post(URL, body(account), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "closed_account"
    with world.a.active():
        assert not Payment.objects.exists()
        attempt = PaymentAttempt.objects.get()
        assert (attempt.outcome, attempt.account_id) == ("refused", account.pk)


def test_an_account_of_a_site_outside_the_grant_answers_like_one_that_does_not_exist(
    world: World,
) -> None:
    on_a1 = world.a.account(world.a.sites[0])
    carol = world.client_for(world.carol)  # every role, site A2 only
    hidden = carol.post(URL, body(on_a1), format="json")
    unknown = carol.post(URL, body(on_a1, account=make_account_number(987654)), format="json")
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json()["error"] == unknown.json()["error"]
    on_a2 = world.a.account(world.a.sites[1])
    world.a.on_shift(world.carol, world.a.sites[1])
    assert carol.post(URL, body(on_a2), format="json").status_code == 201


def test_another_tenants_account_is_unknown_and_its_payments_unseen(world: World) -> None:
    payment = world.a.payment()
    mallory = world.client_for(world.mallory)
    b_cashier = world.client_for(world.b.staff((Role.CASHIER, None)))
    response = b_cashier.post(URL, body(payment.account), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["account"]
    assert mallory.get(URL).json()["results"] == []
    assert mallory.get(f"{URL}{payment.pk}/").status_code == 404
    assert mallory.get(f"/api/v1/accounts/{payment.account.number}/due/").status_code == 404
    with world.b.active():
        attempt = PaymentAttempt.objects.get()
    assert attempt.account_id is None  # A's account is not named in B's records
    with world.a.active():
        assert not PaymentAttempt.objects.exists()
        assert Payment.objects.count() == 1


def test_a_bank_posts_its_collections_with_its_token_into_its_clearing_account(
    world: World,
) -> None:
    account = world.a.account()
    client, token = world.a.api_client((Role.CASHIER, None))
    bank = token_client(token)
    response = bank.post(
        URL,
        body(account, channel="bank_collection", external_reference="ICBC-20261129-0001"),
        format="json",
    )
    assert response.status_code == 201, response.content
    assert bank.post(URL, body(account), format="json").status_code == 400  # not at a counter
    with world.a.active():
        clearing = LedgerAccount.objects.get(kind=LedgerKind.CLEARING, holder=f"client:{client.pk}")
        assert clearing.balance == Decimal("120.50")
        assert Payment.objects.get().source == f"client:{client.pk}"


def test_online_payments_are_idempotent_per_provider_whichever_client_relays_them(
    world: World,
) -> None:
    account = world.a.account()
    request = body(account, channel="online", provider="wechat", external_reference="wx-42")
    relays = [token_client(world.a.api_client((Role.CASHIER, None))[1]) for _ in range(2)]
    first = relays[0].post(URL, request, format="json")
    second = relays[1].post(URL, request, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    missing = relays[0].post(URL, {**request, "provider": ""}, format="json")
    assert missing.status_code == 400 and "provider" in missing.json()["error"]["fields"]
    with world.a.active():
        clearing = LedgerAccount.objects.get(kind=LedgerKind.CLEARING, holder="provider:wechat")
        assert clearing.balance == Decimal("120.50")


def test_a_bank_reports_a_rejected_direct_debit_for_finance_to_trace(world: World) -> None:
    account = world.a.account()
    _client, token = world.a.api_client((Role.CASHIER, None))
    response = token_client(token).post(
        "/api/v1/payment-attempts/",
        {
            "account": account.number,
            "channel": "bank_debit",
            "amount": "86.40",
            "reason": "余额不足",
            "external_reference": "CCB-77",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    reported = response.json()
    assert (reported["outcome"], reported["reason"], reported["amount"]) == (
        "rejected",
        "余额不足",
        "86.40",
    )
    with world.a.active():
        assert not Payment.objects.exists()
        assert AuditEvent.objects.filter(action="payment.rejection_reported").exists()
    cashier_list = world.client_for(world.bob).get("/api/v1/payment-attempts/")
    assert cashier_list.status_code == 403  # finance, supervisors and inspectors read them


def test_payments_are_listed_with_filters(world: World) -> None:
    a = world.a
    one = a.payment(a.sites[0])
    two = a.payment(a.sites[1], amount="75.00")
    alice = world.client_for(world.alice)

    def ids(**query: str) -> set[int]:
        response = alice.get(URL, query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {one.pk, two.pk}
    assert ids(account=str(one.account_id)) == {one.pk}
    assert ids(account_number=two.account.number) == {two.pk}
    assert ids(site=str(a.sites[1].pk)) == {two.pk}
    assert ids(channel="counter_cash") == {one.pk, two.pk}
    assert ids(channel="online") == set()
    assert ids(paid_on=one.paid_on.isoformat()) == {one.pk, two.pk}
    assert ids(paid_from=(one.paid_on + timedelta(days=1)).isoformat()) == set()
    assert ids(state="posted") == {one.pk, two.pk}
    assert ids(state="reversed") == set()
    assert alice.get(URL, {"state": "gone"}).status_code == 400
    assert alice.get(URL, {"paid_on": "yesterday"}).status_code == 400
    carol = world.client_for(world.carol)
    assert {row["id"] for row in carol.get(URL).json()["results"]} == {two.pk}


def test_what_an_account_owes_today_with_late_fees_credit_and_wallet(world: World) -> None:
    a = world.a
    account = a.account()
    today = timezone.localdate(timezone=a.tenant.zone)
    late = a.issued_bill(account, "200.00", today - timedelta(days=10), period="2026-08")
    fresh = a.issued_bill(account, "50.00", today + timedelta(days=5), period="2026-09")
    url = f"/api/v1/accounts/{account.number}/due/"
    owed = world.client_for(world.bob).get(url)
    assert owed.status_code == 200, owed.content
    due = owed.json()
    # 200.00 × 1‰ × 10 days = 2.00 on the late bill; none on the other.
    assert [(i["bill"], i["principal"], i["late_fee"]) for i in due["items"]] == [
        (late.pk, "200.00", "2.00"),
        (fresh.pk, "50.00", "0.00"),
    ]
    assert (due["principal"], due["late_fees"], due["credit"], due["amount_due"]) == (
        "250.00",
        "2.00",
        "0.00",
        "252.00",
    )
    assert due["as_of"] == today.isoformat()
    reader = world.a.staff((Role.METER_READER, None))
    assert world.client_for(reader).get(url).status_code == 403
    assert world.client_for(world.bob).get("/api/v1/accounts/0000000011/due/").status_code == 400
    on_a1 = world.client_for(world.carol).get(url)
    assert on_a1.status_code == 404


def test_a_cashier_signs_in_with_a_second_factor_before_taking_money(world: World) -> None:
    """Taking a payment and reversing one are money actions: where the tenant requires it, a
    cashier's session without the second factor is refused; a bank's token is not."""
    tenant = world.a.tenant
    tenant.require_second_factor = True
    tenant.save(update_fields=["require_second_factor"])
    assert {Role.CASHIER, Role.HQ_FINANCE, Role.SITE_MANAGER} <= second_factor_roles()
    account = world.a.account()
    session = Client()
    signed_in = session.post("/login/", {"username": "bob", "password": PASSWORD})
    assert signed_in.status_code == 302
    refused = session.post(URL, body(account), content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "second_factor_required"
    _client, token = world.a.api_client((Role.CASHIER, None))
    bank = token_client(token).post(URL, body(account, channel="bank_debit"), format="json")
    assert bank.status_code == 201


def test_a_page_of_payments_costs_the_same_queries_however_many_rows(world: World) -> None:
    alice = world.client_for(world.alice)
    alice.get(URL)  # the session and the tenant read once

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice.get(URL).status_code == 200
        return len(captured.captured_queries)

    world.a.payment()
    one = queries()
    for _ in range(6):
        account = world.a.account()
        world.a.issued_bill(account, "10.00", timezone.localdate() + timedelta(days=3))
        world.a.payment(account=account)
    assert queries() == one
