"""``{{ run.progressed_at|moment }}``: a recent time as staff read it on a live panel: HH:MM in
the tenant's zone (the zone the console activates) when it is today there, else with its date."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def moment(value: datetime | None) -> str:
    if value is None:
        return "—"
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return f"{local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M}"
