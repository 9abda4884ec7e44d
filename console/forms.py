"""Console forms: fields described once, validated by the API's serializers and the services,
their errors shown next to the field in the person's language, and what was typed kept when a
form is wrong.

A page builds ``Form(fields, request.POST)`` and runs its work inside ``form.attempt()``: a
validation error from a serializer (DRF) or a service (Django) lands on the form, by field,
and the page renders the form again with status 400 instead of redirecting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest
from django.utils.functional import Promise
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.request import Request

NON_FIELD = "__all__"
BLANK_SENT_KINDS = frozenset({"text", "textarea"})


@dataclass(frozen=True)
class Field:
    name: str
    label: Promise | str
    kind: str = "text"  # text, number, date, datetime-local, select, textarea, checkbox, hidden
    required: bool = False
    choices: Sequence[tuple[Any, Any]] = ()
    help: Promise | str = ""
    step: str | None = None
    autofocus: bool = False
    # A text the browser checks before sending (HTML ``pattern``); ``help`` is then the input's
    # title, so the browser's refusal says what is expected instead of "does not match".
    pattern: str | None = None
    # Whether a field left empty is sent as "" (so the serializer's ``required`` and
    # ``allow_blank`` decide) or left out (the serializer's default, or "keep what is on
    # record"). ``None``: by kind, text and textarea sent, the others left out.
    send_blank: bool | None = None

    @property
    def sends_blank(self) -> bool:
        if self.send_blank is not None:
            return self.send_blank
        return self.kind in BLANK_SENT_KINDS


@dataclass
class BoundField:
    field: Field
    value: Any
    errors: list[str]

    @property
    def id(self) -> str:
        return f"id_{self.field.name}"

    @property
    def checked(self) -> bool:
        return str(self.value).lower() in ("1", "true", "on")


def _messages(detail: Any) -> list[str]:
    if isinstance(detail, Mapping):
        return [
            f"{key}: {message}" for key, value in detail.items() for message in _messages(value)
        ]
    if isinstance(detail, list | tuple):
        return [message for item in detail for message in _messages(item)]
    return [str(detail)]


def error_map(exc: DjangoValidationError | DrfValidationError) -> dict[str, list[str]]:
    """A validation error of either framework as messages by field (``__all__`` for the rest)."""
    if isinstance(exc, DrfValidationError):
        detail = exc.detail
        if isinstance(detail, Mapping):
            found: dict[str, list[str]] = {}
            for key, value in detail.items():
                name = NON_FIELD if key in ("non_field_errors", NON_FIELD) else str(key)
                found.setdefault(name, []).extend(_messages(value))
            return found
        return {NON_FIELD: _messages(detail)}
    if hasattr(exc, "error_dict"):
        return {
            (NON_FIELD if key in (NON_FIELD, "non_field_errors") else key): list(messages)
            for key, messages in exc.message_dict.items()
        }
    return {NON_FIELD: list(exc.messages)}


@dataclass
class Form:
    fields: Sequence[Field]
    data: Mapping[str, Any] | None = None
    initial: Mapping[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def submitted(self) -> bool:
        return self.data is not None

    @property
    def ok(self) -> bool:
        return not self.errors

    def value(self, name: str) -> Any:
        if self.data is not None:
            return self.data.get(name, "")
        return self.initial.get(name, "")

    def cleaned(self) -> dict[str, Any]:
        """What was typed. A text posted empty is sent as ``""``, so a required name left empty
        is refused by the serializer rather than ignored; a blank of another kind (a date, a
        number, a choice), of a field that says so, or a field not posted at all is left out
        (the serializer applies its own default, an edit keeps what is on record)."""
        values: dict[str, Any] = {}
        for spec in self.fields:
            raw = self.value(spec.name)
            if spec.kind == "checkbox":
                values[spec.name] = str(raw).lower() in ("1", "true", "on")
            elif raw not in ("", None):
                values[spec.name] = raw
            elif spec.sends_blank and self.data is not None and spec.name in self.data:
                values[spec.name] = ""
        return values

    @property
    def bound(self) -> list[BoundField]:
        return [
            BoundField(spec, self.value(spec.name), self.errors.get(spec.name, []))
            for spec in self.fields
        ]

    @property
    def non_field_errors(self) -> list[str]:
        """The errors of no field on the form, as sentences: a service's field name the form
        does not show ("amount") is an identifier, never shown to the person."""
        known = {spec.name for spec in self.fields if spec.kind != "hidden"}
        return [
            message
            for name, messages in self.errors.items()
            if name not in known
            for message in messages
        ]

    def add_errors(self, errors: Mapping[str, list[str]]) -> None:
        for name, messages in errors.items():
            self.errors.setdefault(name, []).extend(messages)

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Run the work; a validation error of either framework lands on this form."""
        try:
            yield
        except (DjangoValidationError, DrfValidationError) as exc:
            self.add_errors(error_map(exc))


def api_request(request: HttpRequest) -> Request:
    """The page's request as the API's serializers expect it in their context (they read the
    principal and the site scope from it)."""
    drf_request = Request(request)
    drf_request.principal = getattr(request, "principal", None)  # type: ignore[attr-defined]
    drf_request.site_scope = getattr(request, "site_scope", None)  # type: ignore[attr-defined]
    return drf_request
