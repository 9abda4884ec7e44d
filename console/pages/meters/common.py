"""What the read pages share: the gateways a person may pick in a filter, labels of
the read stage's choices, and links between the pages."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse

from metering.models import Gateway, Meter, MeterCommand


def scoped_gateways(request: HttpRequest | None) -> QuerySet[Gateway]:
    scope = getattr(request, "site_scope", None)
    if scope is None:
        return Gateway.objects.none()
    return Gateway.objects.for_sites(scope.site_ids_or_none).order_by("name")


# For a filter's ``queryset``: django-filter calls it with the request (its stubs know only a
# queryset there).
GATEWAYS: Any = scoped_gateways


def meter_url(meter: Meter | Any) -> str:
    return reverse("console:meter", args=[meter.pk])


def gateway_url(gateway: Gateway | None) -> str | None:
    return reverse("console:gateway", args=[gateway.pk]) if gateway is not None else None


def command_url(command: MeterCommand) -> str:
    return reverse("console:meter-command", args=[command.pk])


def percent(share: float | None) -> str:
    """A share as staff read it (``97.5%``), or a dash when there is nothing to measure."""
    return "—" if share is None else f"{share * 100:.1f}%"


def label_of(choices: Any, value: str) -> str:
    """The label of a ``TextChoices`` value, or the value itself when it is not one."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value
