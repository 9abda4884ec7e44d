"""The tenant's own settings through the API (``/api/v1/tenants/me/``)."""

from datetime import timedelta

import pytest

from tenancy.models import Tenant
from tests.world import World

pytestmark = pytest.mark.django_db


def test_an_earliest_reading_day_after_today_is_refused(world: World) -> None:
    tomorrow = world.a.tenant.local_today() + timedelta(days=1)
    answer = world.client_for(world.alice).patch(
        "/api/v1/tenants/me/", {"earliest_reading_on": tomorrow.isoformat()}, format="json"
    )
    assert answer.status_code == 400
    assert "earliest_reading_on" in answer.json()["error"]["fields"]
    assert Tenant.objects.get(pk=world.a.tenant.pk).earliest_reading_on is None


def test_today_is_accepted_as_the_earliest_reading_day(world: World) -> None:
    today = world.a.tenant.local_today()
    answer = world.client_for(world.alice).patch(
        "/api/v1/tenants/me/", {"earliest_reading_on": today.isoformat()}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert Tenant.objects.get(pk=world.a.tenant.pk).earliest_reading_on == today
