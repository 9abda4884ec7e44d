"""Console pages: the audit trail, for inspectors and administrators (filter by actor, action,
object and time; an event's before and after)."""

from __future__ import annotations

import json

import django_filters
from django import forms
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from console.access import page, scoped
from console.filters import SINCE_LABEL, UNTIL_LABEL, LocalDayFilter
from console.lists import Column, Listing, listing_response
from console.nav import Entry
from tenancy.audit import AuditAction, action_label, object_type_label
from tenancy.models import ActorKind, AuditEvent, User

NAV = [Entry("inspect", _("Audit trail"), "console:audit-events", "audit_events")]


def _staff_choices() -> list[tuple[int, str]]:
    return [(user.pk, user.label) for user in User.tenant_staff.order_by("username")]


class AuditFilter(django_filters.FilterSet):
    actor_kind = django_filters.ChoiceFilter(label=_("Actor kind"), choices=ActorKind.choices)
    actor_id = django_filters.ChoiceFilter(label=_("Staff member"), choices=_staff_choices)
    action = django_filters.ChoiceFilter(label=_("Action"), choices=AuditAction.choices)
    object_type = django_filters.CharFilter(label=_("Object type"))
    object_id = django_filters.CharFilter(label=_("Object id"))
    since = LocalDayFilter(field_name="created_at", label=SINCE_LABEL)
    until = LocalDayFilter(field_name="created_at", label=UNTIL_LABEL, upto=True)

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.form.fields["object_type"].widget = forms.TextInput(attrs={"size": 16})
        self.form.fields["object_id"].widget = forms.TextInput(attrs={"size": 10})


def _event_url(event: AuditEvent) -> str:
    return reverse("console:audit-event", args=[event.pk])


COLUMNS = [
    Column("created_at", _("Time"), link=_event_url),
    Column("actor_label", _("Actor")),
    Column("get_actor_kind_display", _("Actor kind")),
    Column("action", _("Action"), value=lambda e: action_label(e.action)),
    Column("object_type", _("Object type"), value=lambda e: object_type_label(e.object_type)),
    Column("object_id", _("Object id")),
    Column("ip", _("Address")),
]


@page("audit_events")
def audit_events(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, AuditEvent.objects.all()),
        columns=COLUMNS,
        filterset=AuditFilter,
        export_name="audit-events",
    )
    return listing_response(request, "console/audit/events.html", {"listing": listing})


@page("audit_events")
def audit_event(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(scoped(request, AuditEvent.objects.all()), pk=event_id)
    return render(
        request,
        "console/audit/event.html",
        {
            "event": event,
            "action_label": action_label(event.action),
            "before": json.dumps(event.before, ensure_ascii=False, indent=2)
            if event.before is not None
            else None,
            "after": json.dumps(event.after, ensure_ascii=False, indent=2)
            if event.after is not None
            else None,
            "object_ids": event.object_ids,
        },
    )


urlpatterns: list[URLPattern] = [
    path("audit/", audit_events, name="audit-events"),
    path("audit/<int:event_id>/", audit_event, name="audit-event"),
]
