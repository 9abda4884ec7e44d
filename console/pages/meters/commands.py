"""Meter commands in the console: trip or close a relay (拉闸 / 合闸) or write a setpoint, after a
page that says what will happen and asks why; then the command's page follows it from queued to
sent to confirmed or failed, polling while it is open. The same serializer and service as the
API's ``meter-commands`` endpoint."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.access import SITES, page, principal_of, scoped
from console.forms import Field, Form, api_request
from console.lists import Column, Listing, display, listing_response
from console.pages.customers._common import may
from console.pages.meters.common import command_url, label_of, meter_url
from ledger.services import account_ledger
from metering import services
from metering.api import MeterCommandSerializer
from metering.meter_profiles import ProfileError, get_profile
from metering.models import (
    OPEN_COMMAND_STATES,
    CommandKind,
    CommandState,
    Meter,
    MeterCommand,
)

KINDS = {"trip": CommandKind.RELAY_TRIP, "close": CommandKind.RELAY_CLOSE, "setpoint": "setpoint"}
REASON = Field(
    "reason",
    _("Reason"),
    required=True,
    help=_("Kept with the command and in the audit trail, e.g. the arrears or the work order."),
)


def _meter_place(meter: Meter) -> str:
    """The premise the meter supplies, in full (address, building, unit, room) and with its
    account: an address alone is often the whole estate."""
    account = meter.account
    premise = meter.premise or (account.premise if account is not None else None)
    if premise is not None and account is not None:
        return gettext("%(premise)s (account %(number)s)") % {
            "premise": premise,
            "number": account.number,
        }
    if premise is not None:
        return str(premise)
    if account is not None:
        return gettext("account %(number)s") % {"number": account.number}
    return gettext("meter %(serial)s") % {"serial": meter.serial_number}


def consequences(meter: Meter, kind: str, *, owed: Decimal | None = None) -> list[str]:
    """What will happen, in the words a person deciding it needs; ``owed``, the account's
    receivable balance, when the person may see the books."""
    place = _meter_place(meter)
    gateway = meter.gateway.name if meter.gateway is not None else "—"
    lines = []
    if kind == CommandKind.RELAY_TRIP:
        lines.append(
            gettext("The relay of meter %(serial)s opens: %(place)s loses power.")
            % {"serial": meter.serial_number, "place": place}
        )
        lines.append(gettext("Power stays off until someone closes the relay again."))
    elif kind == CommandKind.RELAY_CLOSE:
        lines.append(
            gettext("The relay of meter %(serial)s closes: %(place)s gets power back.")
            % {"serial": meter.serial_number, "place": place}
        )
        lines.append(gettext("Make sure it is safe to switch the supply on at the premise."))
    else:
        lines.append(
            gettext("The setpoint you choose is written to meter %(serial)s.")
            % {"serial": meter.serial_number}
        )
    if owed is not None and kind != "setpoint":
        if owed > 0:
            lines.append(gettext("The account owes %(amount)s yuan.") % {"amount": display(owed)})
        else:
            lines.append(gettext("The account owes nothing."))
    lines.append(
        gettext(
            "Gateway %(gateway)s sends the command between reads on its bus and confirms it by "
            "reading the register back; the command's page shows its progress."
        )
        % {"gateway": gateway}
    )
    lines.append(gettext("A command that cannot reach the meter within 24 hours expires."))
    return lines


def _fields(meter: Meter, kind: str) -> list[Field]:
    if kind != "setpoint":
        return [REASON]
    try:
        setpoints = get_profile(meter.profile).setpoints
    except ProfileError:
        setpoints = ()
    choices = [
        (spec.name, f"{spec.name} ({display(spec.minimum)} – {display(spec.maximum)})")
        for spec in setpoints
    ]
    return [
        Field("setpoint", _("Setpoint"), kind="select", required=True, choices=choices),
        Field("value", _("Value"), kind="number", required=True, step="0.001"),
        REASON,
    ]


def _owed(request: HttpRequest, meter: Meter) -> Decimal | None:
    """The receivable balance of the meter's account, for those who may read the books."""
    if meter.account is None or not may(request, "ledger", "view", meter.site_id):
        return None
    return account_ledger(meter.account, latest=0).receivable


TITLES = {
    CommandKind.RELAY_TRIP: _("Trip the relay of meter %(serial)s (拉闸)"),
    CommandKind.RELAY_CLOSE: _("Close the relay of meter %(serial)s (合闸)"),
    "setpoint": _("Write a setpoint of meter %(serial)s"),
}
CONFIRM_LABELS = {
    CommandKind.RELAY_TRIP: _("Trip the relay"),
    CommandKind.RELAY_CLOSE: _("Close the relay"),
    "setpoint": _("Write the setpoint"),
}


@page("meter_commands", "add")
def new_command(request: HttpRequest, meter_id: int, kind: str) -> HttpResponseBase:
    """GET: what will happen and the reason asked; POST: the command is issued."""
    if kind not in KINDS:
        raise Http404
    command_kind = KINDS[kind]
    meter = get_object_or_404(
        scoped(
            request,
            Meter.objects.select_related("gateway", "account__premise", "premise"),
        ),
        pk=meter_id,
    )
    form = Form(_fields(meter, command_kind), request.POST if request.method == "POST" else None)
    if form.submitted:
        with form.attempt():
            data = {**form.cleaned(), "meter": meter.pk, "kind": command_kind}
            body = MeterCommandSerializer(data=data, context={"request": api_request(request)})
            body.is_valid(raise_exception=True)
            values = dict(body.validated_data)
            principal = principal_of(request)
            assert principal is not None
            command = services.issue_command(
                principal,
                values.pop("meter"),
                kind=values["kind"],
                reason=values["reason"],
                setpoint=values.get("setpoint", ""),
                value=values.get("value"),
            )
            return redirect(command_url(command))
    return render(
        request,
        "console/confirm.html",
        {
            "title": TITLES[command_kind] % {"serial": meter.serial_number},
            "consequences": consequences(meter, command_kind, owed=_owed(request, meter)),
            "form": form,
            "action_url": request.path,
            "cancel_url": meter_url(meter),
            "confirm_label": CONFIRM_LABELS[command_kind],
        },
        status=400 if form.submitted else 200,
    )


# --- a command's progress ------------------------------------------------------------------------


def steps(command: MeterCommand) -> list[dict[str, Any]]:
    """The command's way: queued, sent, then its end; each step done, current or to come."""
    state = command.state
    ended = state not in OPEN_COMMAND_STATES
    end_label = label_of(CommandState, state) if ended else gettext("Confirmed or failed")
    return [
        {"label": gettext("Queued"), "at": command.created_at, "status": "done"},
        {
            "label": gettext("Sent to the meter"),
            "at": command.sent_at,
            "status": "done"
            if command.sent_at or ended
            else ("current" if state == CommandState.PENDING else "todo"),
        },
        {
            "label": end_label,
            "at": command.completed_at,
            "status": "done" if ended else ("current" if state == CommandState.SENT else "todo"),
        },
    ]


BADGES: dict[str, str] = {
    CommandState.CONFIRMED: "ok",
    CommandState.FAILED: "bad",
    CommandState.EXPIRED: "bad",
}


def _progress_context(command: MeterCommand) -> dict[str, Any]:
    return {
        "command": command,
        "steps": steps(command),
        "is_open": command.state in OPEN_COMMAND_STATES,
        "state_label": label_of(CommandState, command.state),
        "badge": BADGES.get(command.state, "warn"),
        "progress_url": reverse("console:meter-command-progress", args=[command.pk]),
    }


def _command(request: HttpRequest, command_id: int) -> MeterCommand:
    return get_object_or_404(
        scoped(request, MeterCommand.objects.select_related("meter", "meter__gateway")),
        pk=command_id,
    )


@page("meter_commands")
def command_page(request: HttpRequest, command_id: int) -> HttpResponse:
    command = _command(request, command_id)
    return render(
        request,
        "console/meters/command.html",
        {**_progress_context(command), "kind_label": label_of(CommandKind, command.kind)},
    )


@page("meter_commands")
def command_progress(request: HttpRequest, command_id: int) -> HttpResponse:
    """The progress panel alone, for htmx to poll; without the poll once the command ended."""
    command = _command(request, command_id)
    return render(request, "console/meters/_command_progress.html", _progress_context(command))


# --- the commands list ---------------------------------------------------------------------------


class CommandFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(
        label=_("Site"), field_name="meter__site", queryset=SITES
    )
    state = django_filters.ChoiceFilter(label=_("State"), choices=CommandState.choices)
    kind = django_filters.ChoiceFilter(label=_("Kind"), choices=CommandKind.choices)
    serial = django_filters.CharFilter(
        label=_("Serial number"), field_name="meter__serial_number", lookup_expr="startswith"
    )

    class Meta:
        model = MeterCommand
        fields: list[str] = []


COMMAND_COLUMNS = [
    Column("created_at", _("Requested"), link=command_url),
    Column("meter.serial_number", _("Meter"), link=lambda c: meter_url(c.meter)),
    Column("get_kind_display", _("Kind")),
    Column("setpoint", _("Setpoint")),
    Column("value", _("Value"), numeric=True),
    Column("get_state_display", _("State")),
    Column("attempts", _("Attempts"), numeric=True),
    Column("requested_by_label", _("Requested by")),
    Column("reason", _("Reason")),
    Column("completed_at", _("Ended")),
]


@page("meter_commands")
def commands(request: HttpRequest) -> HttpResponseBase:
    listing = Listing(
        request,
        scoped(request, MeterCommand.objects.select_related("meter")),
        columns=COMMAND_COLUMNS,
        filterset=CommandFilter,
        export_name="meter-commands",
    )
    return listing_response(request, "console/meters/commands.html", {"listing": listing})
