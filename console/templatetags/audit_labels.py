"""``{{ event.action|action_label }}``: an audit event's action as people read it."""

from __future__ import annotations

from django import template

from tenancy.audit import action_label as label_of_action
from tenancy.audit import object_type_label

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    return label_of_action(action)


@register.filter
def object_label(object_type: str) -> str:
    """``billing.billrun`` as people read it (账单批次 / bill run); an unknown type as stored."""
    return object_type_label(object_type)
