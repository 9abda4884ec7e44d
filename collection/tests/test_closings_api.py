"""The account-closing API: the final reading in the registers' format, and cancelling a
closing that waits (alice, tenant A's administrator; bob, a cashier; mallory, tenant B)."""

from __future__ import annotations

import pytest

from collection.models import AccountClosing, ClosingState
from metering.models import Reading
from tests.world import World

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("total", "code"),
    [("1e4", "exponent"), ("-1", "min_value"), ("", "invalid"), ("10.0001", "max_decimal_places")],
)
def test_a_final_reading_that_is_not_a_register_value_is_refused_with_400(
    world: World, total: str, code: str
) -> None:
    account = world.a.account()
    world.a.meter(account=account, on_gateway=False)
    body = {"account": account.number, "taken_at": "2026-09-20T10:00:00+08:00", "total": total}
    answer = world.client_for(world.alice).post(
        "/api/v1/account-closings/preview/", body, format="json"
    )
    assert answer.status_code == 400, answer.content
    assert code in str(answer.json()), answer.json()
    with world.a.active():
        assert not Reading.objects.filter(meter__account=account).exists()


def test_a_final_reading_with_three_decimals_is_taken_as_the_registers_show_it(
    world: World,
) -> None:
    account = world.a.account()
    world.a.meter(account=account, on_gateway=False)
    body = {"account": account.number, "taken_at": "2026-09-20T10:00:00+08:00",
            "total": "40615.105"}  # fmt: skip
    answer = world.client_for(world.alice).post(
        "/api/v1/account-closings/preview/", body, format="json"
    )
    assert answer.status_code == 200, answer.content


def test_a_supervisor_cancels_a_closing_that_waits_and_others_cannot(world: World) -> None:
    closing = world.a.account_closing(world.a.sites[0])
    url = f"/api/v1/account-closings/{closing.pk}/cancel/"
    assert (
        world.client_for(world.mallory).post(url, {"reason": "x"}, format="json").status_code == 404
    )
    assert world.client_for(world.bob).post(url, {"reason": "x"}, format="json").status_code == 403
    alice = world.client_for(world.alice)
    assert alice.post(url, {"reason": ""}, format="json").status_code == 400
    done = alice.post(url, {"reason": "客户不再迁出"}, format="json")
    assert done.status_code == 200, done.content
    assert (done.json()["state"], done.json()["cancel_reason"]) == ("cancelled", "客户不再迁出")
    assert alice.post(url, {"reason": "again"}, format="json").status_code == 409
    with world.a.active():
        assert AccountClosing.objects.get(pk=closing.pk).state == ClosingState.CANCELLED
