"""The navigation shows a page exactly when the server lets the person open it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import resolve, reverse

from console.nav import entries
from tests.world import World

pytestmark = pytest.mark.django_db


def _page_permission(url_name: str) -> tuple[str, str] | None:
    return getattr(resolve(reverse(url_name)).func, "console_permission", None)


def test_each_navigation_entry_asks_for_the_permission_its_page_asks_for() -> None:
    """The dashboard has no permission of its own (every member of staff opens it)."""
    differ = {
        entry.url_name: ((entry.resource, entry.action), permission)
        for entry in entries()
        if (permission := _page_permission(entry.url_name))
        and permission != (entry.resource, entry.action)
    }
    assert differ == {}


@pytest.mark.parametrize(
    "url", ["/console/admin/settings/", "/console/admin/calendar/", "/console/admin/sites/"]
)
def test_a_cashier_who_may_open_an_admin_page_finds_it_in_the_menu(world: World, url: str) -> None:
    client = Client()
    client.force_login(world.bob)  # a cashier
    response = client.get(url)
    assert response.status_code == 200
    menu = {link.url for _section, links in response.context["console_nav"] for link in links}
    assert url in menu
