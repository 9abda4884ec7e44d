"""``{{ event.action|action_label }}``: an audit event's action as people read it."""

from __future__ import annotations

from django import template

from tenancy.audit import action_label as label_of_action

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    return label_of_action(action)
