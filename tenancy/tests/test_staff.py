"""Staff users and their grants, administered through the API."""

import pytest

from tenancy.models import RoleGrant, User
from tenancy.roles import Role
from tests.world import PASSWORD, World

pytestmark = pytest.mark.django_db


def test_an_administrator_creates_a_cashier_for_one_site(world: World) -> None:
    client = world.client_for(world.alice)
    site = world.a.sites[1]
    response = client.post(
        "/api/v1/staff/",
        {
            "username": "cashier-two",
            "password": PASSWORD,
            "display_name": "收费员 二",
            "grants": [{"role": "cashier", "site": site.pk}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["grants"] == [{"role": "cashier", "site": site.pk}]
    assert "password" not in response.json()
    user = User.objects.get(username="cashier-two")
    assert user.tenant_id == world.a.tenant.pk and user.check_password(PASSWORD)


@pytest.mark.parametrize(
    "password",
    ["short", "password123", "12345678901", "cashier-two1", "Cashier-Two-cashier-two"],
)
def test_weak_passwords_are_refused(world: World, password: str) -> None:
    response = world.client_for(world.alice).post(
        "/api/v1/staff/",
        {"username": "cashier-two", "password": password, "grants": []},
        format="json",
    )
    assert response.status_code == 400 and "password" in response.json()["error"]["fields"]
    assert not User.objects.filter(username="cashier-two").exists()


def test_user_names_are_unique_across_tenants(world: World) -> None:
    response = world.client_for(world.mallory).post(
        "/api/v1/staff/", {"username": "alice", "password": PASSWORD, "grants": []}, format="json"
    )
    assert response.status_code == 400 and "username" in response.json()["error"]["fields"]


def test_the_last_administrator_cannot_be_removed(world: World) -> None:
    client = world.client_for(world.alice)
    demote = client.patch(
        f"/api/v1/staff/{world.alice.pk}/", {"grants": [{"role": "cashier"}]}, format="json"
    )
    assert demote.status_code == 400
    assert client.delete(f"/api/v1/staff/{world.alice.pk}/").status_code == 400
    assert RoleGrant.dangerously_unscoped.filter(user=world.alice, role=Role.TENANT_ADMIN).exists()


def test_deactivated_staff_keep_their_row_and_lose_their_login(world: World) -> None:
    client = world.client_for(world.alice)
    assert client.delete(f"/api/v1/staff/{world.bob.pk}/").status_code == 204
    world.bob.refresh_from_db()
    assert not world.bob.is_active
    assert world.client_for(world.bob).get("/api/v1/sites/").status_code in (401, 403)


def test_a_site_manager_sees_staff_but_cannot_change_them(world: World) -> None:
    manager = world.a.staff((Role.SITE_MANAGER, world.a.sites[0]))
    client = world.client_for(manager)
    assert client.get("/api/v1/staff/").status_code == 200
    response = client.patch(f"/api/v1/staff/{world.bob.pk}/", {"display_name": "x"}, format="json")
    assert response.status_code == 403


def test_a_password_built_from_the_user_name_is_refused_when_set_later(world: World) -> None:
    response = world.client_for(world.alice).post(
        f"/api/v1/staff/{world.bob.pk}/set-password/", {"password": "bobBOBbob-91"}, format="json"
    )
    assert response.status_code == 400 and "password" in response.json()["error"]["fields"]
    world.bob.refresh_from_db()
    assert world.bob.check_password(PASSWORD)
