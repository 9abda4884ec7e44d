"""Bad input gets a clear 4xx with the error body, never a 500, and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from billing.models import BillingSettings, OpeningBalance
from customers.identifiers import make_account_number
from customers.models import Account, Contact, Customer
from metering.models import Reading
from tenancy.models import AuditEvent, Site
from tenancy.roles import Role
from tests.world import World, build_world, identity_number
from verification.models import VerificationSettings

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse
    from pytest_django import Settings
    from rest_framework.response import _MonkeyPatchedResponse

pytestmark = pytest.mark.django_db


@contextmanager
def nothing_written() -> Iterator[None]:
    before = (
        AuditEvent.dangerously_unscoped.count(),
        Site.dangerously_unscoped.count(),
        Customer.dangerously_unscoped.count(),
        Account.dangerously_unscoped.count(),
        Contact.dangerously_unscoped.count(),
        OpeningBalance.dangerously_unscoped.count(),
    )
    yield
    after = (
        AuditEvent.dangerously_unscoped.count(),
        Site.dangerously_unscoped.count(),
        Customer.dangerously_unscoped.count(),
        Account.dangerously_unscoped.count(),
        Contact.dangerously_unscoped.count(),
        OpeningBalance.dangerously_unscoped.count(),
    )
    assert after == before, "a refused request wrote rows"


def _error(
    response: _MonkeyPatchedResponse | _MonkeyPatchedWSGIResponse,
    status: int,
    code: str | None = None,
) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert set(body) == {"code", "message", "fields"}
    assert body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


def test_malformed_json_is_refused(world: World) -> None:
    client = world.client_for(world.alice)
    with nothing_written():
        response = client.post(
            "/api/v1/sites/", '{"code": "X1", "name": ', content_type="application/json"
        )
    _error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "raw", ['{"code": "X1", "code": "X2", "name": "n"}', '{"code": "X1", "name": NaN}']
)
def test_repeated_keys_and_nan_are_refused(world: World, raw: str) -> None:
    with nothing_written():
        response = world.client_for(world.alice).post(
            "/api/v1/sites/", raw, content_type="application/json"
        )
    _error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "body,field,code",
    [
        ({"code": "X1", "name": 123}, "name", "invalid"),
        ({"code": "X1", "name": "n", "reading_day": "soon"}, "reading_day", "invalid"),
        ({"code": "X1", "name": "n", "reading_day": 31}, "reading_day", "max_value"),
        ({"code": "X1"}, "name", "required"),
        ({"code": "X1", "name": "长" * 201}, "name", "max_length"),
        ({"code": "has space", "name": "n"}, "code", "invalid"),
        ({"code": ["X1"], "name": "n"}, "code", "invalid"),
    ],
)
def test_wrong_types_missing_and_oversized_fields_name_the_field(
    world: World, body: dict[str, Any], field: str, code: str
) -> None:
    with nothing_written():
        response = world.client_for(world.alice).post("/api/v1/sites/", body, format="json")
    error = _error(response, 400, code)
    assert field in error["fields"]


def test_a_duplicate_code_is_a_field_error_not_a_database_error(world: World) -> None:
    taken = world.a.sites[0].code
    with nothing_written():
        response = world.client_for(world.alice).post(
            "/api/v1/sites/", {"code": taken, "name": "n"}, format="json"
        )
    assert "code" in _error(response, 400, "unique")["fields"]


def test_an_account_number_with_a_wrong_check_digit_is_caught(world: World) -> None:
    good = make_account_number(424242)
    mistyped = good[:-1] + str((int(good[-1]) + 1) % 10)
    client = world.client_for(world.alice)
    _error(client.get(f"/api/v1/accounts/{mistyped}/"), 400, "bad_check_digit")
    customer, premise = world.a.customer(), world.a.premise()
    with nothing_written():
        response = client.post(
            "/api/v1/accounts/",
            {
                "number": mistyped,
                "customer": customer.pk,
                "premise": premise.pk,
                "payment_mode": "prepaid",
                "customer_class": "residential",
            },
            format="json",
        )
    assert "number" in _error(response, 400, "bad_check_digit")["fields"]


def test_an_unknown_account_number_is_404_with_the_error_body(world: World) -> None:
    _error(
        world.client_for(world.alice).get(f"/api/v1/accounts/{make_account_number(999999)}/"),
        404,
        "not_found",
    )


def test_a_malformed_mobile_number_is_refused(world: World) -> None:
    customer = world.a.customer()
    client = world.client_for(world.alice)
    for value in ("12345", "+1 415 555 0100", "1381234567", "2381234567a"):
        with nothing_written():
            response = client.post(
                "/api/v1/contacts/",
                {"customer": customer.pk, "kind": "mobile", "value": value, "source": "counter"},
                format="json",
            )
        assert "value" in _error(response, 400, "invalid_mobile")["fields"], value


def test_unknown_ids_in_a_body_are_field_errors(world: World) -> None:
    client = world.client_for(world.alice)
    with nothing_written():
        response = client.post(
            "/api/v1/contacts/",
            {"customer": 987654, "kind": "mobile", "value": "13800138000", "source": "counter"},
            format="json",
        )
    assert "customer" in _error(response, 400, "does_not_exist")["fields"]


def test_a_wrong_identity_number_is_refused(world: World) -> None:
    good = identity_number()
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    with nothing_written():
        response = world.client_for(world.alice).post(
            "/api/v1/customers/",
            {"site": world.a.sites[0].pk, "kind": "person", "name": "n", "id_number": wrong},
            format="json",
        )
    assert "id_number" in _error(response, 400)["fields"]


def test_an_unknown_api_url_answers_json(world: World) -> None:
    _error(world.client_for(world.alice).get("/api/v1/no-such-thing/"), 404, "not_found")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_an_oversized_body_is_413(world: World) -> None:
    with nothing_written():
        response = world.client_for(world.alice).post(
            "/api/v1/sites/", {"code": "X1", "name": "n", "address": "x" * 2000}, format="json"
        )
    _error(response, 413, "payload_too_large")


def test_deleting_a_site_in_use_is_a_409(world: World) -> None:
    world.a.account(world.a.sites[0])
    with nothing_written():
        response = world.client_for(world.alice).delete(f"/api/v1/sites/{world.a.sites[0].pk}/")
    _error(response, 409, "in_use")


@pytest.mark.parametrize("caller", ["session", "token"])
def test_too_many_requests_get_429_with_the_error_body(
    world: World, settings: Settings, caller: str
) -> None:
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"principal": "3/min", "anon": "60/min"},
    }
    client: Client
    headers: dict[str, Any]
    if caller == "session":
        client, headers = world.client_for(world.alice), {}
    else:
        _client_row, token = world.a.api_client((Role.CASHIER, None))
        client, headers = Client(), {"HTTP_AUTHORIZATION": f"Token {token}"}
    responses = [client.get("/api/v1/sites/", **headers) for _ in range(4)]
    cache.clear()
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    _error(responses[3], 429, "throttled")
    assert int(responses[3]["Retry-After"]) <= 60


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)

CREATE_ROUTES = {
    "/api/v1/sites/": ["code", "name", "address", "reading_day", "is_active"],
    "/api/v1/customers/": ["site", "kind", "name", "id_number"],
    "/api/v1/accounts/": [
        "number",
        "customer",
        "premise",
        "payment_mode",
        "customer_class",
        "household_size",
        "contracted_capacity_kva",
        "opened_on",
    ],
    "/api/v1/contacts/": ["customer", "kind", "value", "source", "sms_consent", "is_primary"],
    "/api/v1/staff/": ["username", "password", "grants", "email"],
}


class NeverA500(HypothesisTestCase):
    """Arbitrary JSON in every field of the create endpoints: a 201 or a 4xx, never a 500."""

    def setUp(self) -> None:
        self.world = build_world()
        self.client = self.world.client_for(self.world.alice)

    @given(
        route=st.sampled_from(sorted(CREATE_ROUTES)),
        data=st.data(),
    )
    def test_random_bodies_never_cause_a_server_error(
        self, route: str, data: st.DataObject
    ) -> None:
        fields = CREATE_ROUTES[route]
        body = data.draw(st.fixed_dictionaries({}, optional={f: json_values for f in fields}))
        before = AuditEvent.dangerously_unscoped.count()
        response = self.client.post(route, json.dumps(body), content_type="application/json")
        assert response.status_code < 500, (route, body, response.content)
        if response.status_code >= 400:
            assert "error" in response.json()
            assert AuditEvent.dangerously_unscoped.count() == before


@pytest.mark.parametrize("url", ["/api/v1/verification-queue/", "/api/v1/flagged-bills/"])
def test_an_age_beyond_a_century_is_refused_not_a_server_error(world: World, url: str) -> None:
    response = world.client_for(world.alice).get(url, {"older_than_hours": "18000000"})
    assert _error(response, 400)["fields"]["older_than_hours"]


@pytest.mark.parametrize("period", ["0000-01", "1999-12", "2026-13", "abc", "20２６-10"])
@pytest.mark.parametrize("url", ["/api/v1/period-consumptions/compute/", "/api/v1/bill-runs/"])
def test_a_period_outside_2000_to_2099_is_a_field_error(
    world: World, url: str, period: str
) -> None:
    with nothing_written():
        response = world.client_for(world.alice).post(
            url, {"site": world.a.sites[0].pk, "period": period}, format="json"
        )
    assert "YYYY-MM" in _error(response, 400)["fields"]["period"][0]


@pytest.mark.parametrize(
    "url,body",
    [
        ("/api/v1/verification-settings/current/", {"future_tolerance_minutes": 10_000_000_000}),
        ("/api/v1/verification-settings/current/", {"gap_hours": 99_999_999_999_999}),
        ("/api/v1/verification-settings/current/", {"closing_window_hours": 0}),
        ("/api/v1/billing-settings/current/", {"history_bills": 10**15}),
        ("/api/v1/billing-settings/current/", {"tax_code_electricity": "abc"}),
    ],
)
def test_settings_out_of_their_range_are_refused(
    world: World, url: str, body: dict[str, Any]
) -> None:
    with nothing_written():
        response = world.client_for(world.alice).patch(url, body, format="json")
    assert set(_error(response, 400)["fields"]) == set(body)
    settings_model = VerificationSettings if "verification" in url else BillingSettings
    assert not settings_model.objects.filter(tenant=world.a.tenant).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"csv": "account,arrears\n1,2\n"},  # a column missing
        {"csv": "户号,欠费,年累计电量\nX,1,2,3,4\n"},  # more values than columns, no such account
        {"csv": '户号,欠费,年累计电量\n"unterminated,1,2\n'},
        {"csv": "account,arrears,tier_kwh\n" + "9" * 40 + ",NaN,1e999\n"},
        {"rows": [{"account": 12, "arrears": "1"}]},  # a number where text belongs
        {"rows": [{"account": "A\x00", "arrears": "1"}]},
        {"rows": []},
        {"rows": [], "csv": "account,arrears,tier_kwh\n"},
        {},
    ],
)
def test_a_bad_opening_import_is_refused_with_the_reason_and_imports_nothing(
    world: World, body: dict[str, Any]
) -> None:
    settings = BillingSettings.stored_for_tenant(world.a.tenant)
    settings.go_live_on = "2026-01-01"
    settings.save()
    admin = world.a.staff((Role.TENANT_ADMIN, None))
    with nothing_written():
        response = world.client_for(admin).post(
            "/api/v1/opening-balances/import/", body, format="json"
        )
    assert _error(response, 400)


@pytest.mark.parametrize("url", ["/api/v1/period-consumptions/compute/", "/api/v1/bill-runs/"])
def test_a_period_that_has_not_ended_is_refused(world: World, url: str) -> None:
    with nothing_written():
        response = world.client_for(world.alice).post(
            url, {"site": world.a.sites[0].pk, "period": "2099-12"}, format="json"
        )
    assert "2099-12" in _error(response, 400)["fields"]["period"][0]


def test_numbers_with_decimals_in_free_form_json_are_kept_exact(world: World) -> None:
    """The README says JSON numbers are read as exact decimals: an ingest item's ``1.5`` and a
    tariff specification's ``0.5`` were refused with "must be valid JSON"."""
    client = world.client_for(world.alice)
    meter = world.a.meter()
    slot = "2026-11-24T04:00:00Z"
    pushed = client.post(
        "/api/v1/readings/ingest/",
        json.dumps({"readings": [{"meter": meter.serial_number, "taken_at": slot, "total": 1.5}]}),
        content_type="application/json",
    )
    assert pushed.status_code == 200, pushed.content
    assert pushed.json()["stored"] == 1
    tariff = client.post(
        "/api/v1/tariffs/",
        {"code": "FLAT-05", "name": "平价", "utility": "electricity"},
        format="json",
    )
    assert tariff.status_code == 201, tariff.content
    version = client.post(
        f"/api/v1/tariffs/{tariff.json()['id']}/versions/",
        '{"effective_from": "2026-01-01", "spec": {"energy": {"kind": "flat", "price": 0.50}}}',
        content_type="application/json",
    )
    assert version.status_code == 201, version.content
    assert version.json()["spec"]["energy"]["price"] == "0.50"


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/sites/", {"code": "S-RTL", "name": "幸福\u202e小区"}, "name"),
        ("/api/v1/sites/", {"code": "S-NL", "name": "两行\n名字"}, "name"),
        ("/api/v1/sites/", {"code": "S-BEL", "name": "响铃\x07"}, "name"),
        (
            "/api/v1/tariffs/",
            {"code": "LONG", "name": "长", "utility": "electricity", "description": "字" * 100_000},
            "description",
        ),
        ("/api/v1/calendar/", {"date": "0001-01-01", "kind": "holiday"}, "date"),
    ],
)
def test_unreasonable_text_and_dates_are_refused(
    world: World, url: str, body: dict, field: str
) -> None:
    client = world.client_for(world.alice)
    with nothing_written():
        response = client.post(url, body, format="json")
    assert field in _error(response, 400)["fields"], response.content


def test_a_description_with_line_breaks_is_accepted(world: World) -> None:
    client = world.client_for(world.alice)
    body = {"code": "MULTI", "name": "多行", "utility": "electricity", "description": "一\n二"}
    assert client.post("/api/v1/tariffs/", body, format="json").status_code == 201


def test_an_agency_price_for_a_month_outside_2000_to_2099_is_refused(world: World) -> None:
    client = world.client_for(world.alice)
    tariff = client.post(
        "/api/v1/tariffs/", {"code": "AG", "name": "代理", "utility": "electricity"}, format="json"
    ).json()
    spec = {
        "energy": {"kind": "flat", "price": "0.5"},
        "agency_purchase_prices": {"9999-12": "0.4"},
    }
    response = client.post(
        f"/api/v1/tariffs/{tariff['id']}/versions/",
        {"effective_from": "2026-01-01", "spec": spec},
        format="json",
    )
    assert "9999-12" in str(_error(response, 400)["fields"]["spec"])


def test_an_ingest_item_with_ten_thousand_extra_values_is_refused_alone(world: World) -> None:
    client = world.client_for(world.alice)
    meter = world.a.meter()
    slot = "2026-11-24T04:00:00Z"
    crowded = {f"v{n}": "1" for n in range(10_000)}
    items = [
        {"meter": meter.serial_number, "taken_at": slot, "total": "1", "extra": crowded},
        {"meter": meter.serial_number, "taken_at": slot, "total": "1", "extra": {"code": "7"}},
    ]
    answer = client.post("/api/v1/readings/ingest/", {"readings": items}, format="json")
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["invalid", "stored"]
    assert "extra" in results[0]["errors"]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", "/api/v1/sites/", "[" * 1000 + "]" * 1000),
        ("post", "/api/v1/sites/", '{"code": ' + "[" * 40 + "]" * 40 + "}"),
        ("get", "/api/v1/readings/?since=2026-01-01T00:00:00%2B16:00", None),
        ("get", "/api/v1/audit-events/?until=2026-01-01T00:00:00-18:00", None),
        ("get", "/api/v1/meter-events/?since=0001-01-01T00:00:00%2B01:00", None),
        ("get", "/api/v1/calendar/next-working-day/?date=9999-12-31", None),
    ],
)
def test_inputs_that_answered_500_are_clear_400s(
    world: World, method: str, url: str, body: str | None
) -> None:
    client = world.client_for(world.alice)
    with nothing_written():
        if body is None:
            response = client.get(url)
        else:
            response = client.post(url, body, content_type="application/json")
    _error(response, 400)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"meter": {}}, "meter"),
        ({"meter": []}, "meter"),
        ({"extra": {"tou_peak": "-99999999"}}, "extra"),
        ({"extra": {"relay_state": "bogus"}}, "extra"),
        ({"extra": {"tou_peak": "abc"}}, "extra"),
        ({"extra": {"co\u0000de": "1"}}, "extra"),
        ({"extra": {"apparent_power": "abc"}}, "extra"),
        ({"extra": {"apparent_power": "70"}}, "extra"),  # UINT16 at 0.001: at most 65.535
        ({"extra": {"code": "1.5"}}, "extra"),  # a whole number register
    ],
)
def test_an_odd_ingest_item_is_refused_alone_with_its_field(
    world: World, item: dict, field: str
) -> None:
    """``extra`` holds only the profile's values without a column of their own, each checked
    against its register; it filled register columns and the relay state before."""
    client = world.client_for(world.alice)
    meter = world.a.meter()
    good = {"meter": meter.serial_number, "taken_at": "2026-11-24T04:00:00Z", "total": "1"}
    odd = {**good, "taken_at": "2026-11-24T04:15:00Z", **item}
    answer = client.post("/api/v1/readings/ingest/", {"readings": [odd, good]}, format="json")
    assert answer.status_code == 200, answer.content
    first, second = answer.json()["results"]
    assert first["status"] == "invalid" and field in first["errors"], first
    assert second["status"] == "stored"
    assert Reading.dangerously_unscoped.filter(meter=meter).count() == 1


def test_a_lone_surrogate_is_a_field_error_not_a_database_error(world: World) -> None:
    """JSON's "\\ud800" decodes to half a character, which no database column can hold: a
    reading pushed with it in its meter's serial is refused on the item, and a name with it
    is refused on its field."""
    client = world.client_for(world.alice)
    pushed = client.post(
        "/api/v1/readings/ingest/",
        '{"readings": [{"meter": "M\\ud800", "taken_at": "2026-10-01T00:00:00+08:00", '
        '"total": "1.00"}]}',
        content_type="application/json",
    )
    assert pushed.status_code == 200, pushed.content
    assert pushed.json()["invalid"] == 1
    named = client.post(
        "/api/v1/customers/", '{"name": "张\\udc00三", "kind": "person"}',
        content_type="application/json",
    )  # fmt: skip
    assert named.status_code == 400
    assert "name" in named.json()["error"]["fields"]
