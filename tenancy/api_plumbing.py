"""API plumbing shared by every endpoint: JSON parsing, pagination, throttling, and the
exceptions the error handler (``config.errors``) turns into the error body.

This module must not import ``rest_framework.views``: DRF's settings import the classes here
while ``APIView`` is being defined.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import FilterSet
from django_filters import rest_framework as rest_filters
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.widgets import BooleanWidget
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from tenancy import fastcache
from tenancy.throttling import current_window

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import IO

    from rest_framework.renderers import BaseRenderer
    from rest_framework.request import Request
    from rest_framework.views import APIView


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the object."
    default_code = "conflict"


class ConflictingInput(exceptions.ValidationError):
    """A request refused for the current state of things (409), with the field at fault and a
    code in the error body as a 400 has them (a backdated tariff version, ``backdated``)."""

    status_code = status.HTTP_409_CONFLICT


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


class StrictJSONParser(JSONParser):
    """JSON with exact decimals: ``12.30`` arrives as ``Decimal('12.30')``, never a float.

    NaN and Infinity and repeated keys are refused instead of silently taken.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        try:
            text = raw.decode(encoding)
            data = json.loads(
                text,
                parse_float=Decimal,
                parse_constant=_refuse_constant,
                object_pairs_hook=_refuse_duplicate_keys,
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(_("Malformed JSON: %(error)s") % {"error": exc}) from exc
        except RecursionError as exc:
            raise exceptions.ParseError(_too_deep()) from exc
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise exceptions.ParseError(_too_deep())
        return data


# No request of this API nests deeper than a tariff's specification (six levels); deeper JSON
# would only reach code that walks it recursively.
MAX_JSON_DEPTH = 32


def _too_deep() -> str:
    return _("JSON nested deeper than %(depth)s levels is not accepted.") % {
        "depth": MAX_JSON_DEPTH
    }


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists and objects deeper than ``limit`` (walked without
    recursion, so that any depth the parser accepted can be measured)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decimals_as_text(value: Any) -> Any:
    """``value`` with every ``Decimal`` replaced by its exact text (``0.50`` → ``"0.50"``)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: decimals_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decimals_as_text(item) for item in value]
    return value


class ExactJSONField(serializers.JSONField):
    """Free-form JSON in a request (a tariff's specification, an ingest item). The parser reads
    a number with decimals as an exact ``Decimal``; here it is kept as its text, ``0.5`` as
    ``"0.5"``, the form every amount of the API takes, never a float (DRF's own field refused
    it: "Value must be valid JSON")."""

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value(decimals_as_text(data))


class JSONFirstContentNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, answered at once for what integrations send.

    A request with no ``Accept`` header, with ``*/*`` or with exactly the first renderer's media
    type, and no format override (suffix or ``?format=``), gets the first renderer and its media
    type: what DRF's loop over the parsed, precedence-ordered media types returns for it, without
    parsing them (30 µs a request). Everything else goes through DRF's loop, 406 included.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        offered = list(renderers)
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if (
            offered
            and not format_suffix
            and accept in ("*/*", offered[0].media_type)
            and not request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        ):
            return offered[0], offered[0].media_type
        return super().select_renderer(request, offered, format_suffix)


class _StrictBooleanWidget(BooleanWidget):
    """true/false/1/0 as django-filter reads them; any other word is passed on to be refused
    (django-filter's own widget makes it "unknown", so ``?supplementary=maybe`` filtered
    nothing and answered the whole list)."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        raw = data.get(name)
        parsed = super().value_from_datadict(data, files, name)
        return raw if parsed is None and raw not in (None, "") else parsed


class _StrictBooleanField(forms.NullBooleanField):
    default_error_messages = {"invalid": gettext_lazy("Use true or false (or 1 or 0).")}

    def to_python(self, value: Any) -> Any:  # None: not filtered
        if value is None or value == "" or isinstance(value, bool):
            return value if value != "" else None
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")

    def validate(self, value: Any) -> None:
        pass


class StrictBooleanFilter(rest_filters.BooleanFilter):
    field_class = _StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", _StrictBooleanWidget)
        super().__init__(*args, **kwargs)


# The widest offset from UTC any place uses (Kiribati, UTC+14; Baker Island, UTC-12). Python
# reads offsets up to 24 hours; PostgreSQL refuses 16 and more with an error of its own.
MAX_UTC_OFFSET = timedelta(hours=14)
# Dates a query may ask about; outside them, date arithmetic runs off Python's calendar.
EARLIEST_QUERY_DATE = date(1900, 1, 1)
LATEST_QUERY_DATE = date(9000, 12, 31)


class _BoundedIsoDateTimeField(IsoDateTimeField):
    default_error_messages = {
        "offset": gettext_lazy("The offset from UTC must be at most 14 hours."),
        "range": gettext_lazy("The time must fall between the years 1900 and 9000."),
    }

    def to_python(self, value: Any) -> Any:
        moment = super().to_python(value)
        if moment is None:
            return moment
        offset = moment.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise forms.ValidationError(self.error_messages["offset"], code="offset")
        if not EARLIEST_QUERY_DATE <= moment.date() <= LATEST_QUERY_DATE:
            raise forms.ValidationError(self.error_messages["range"], code="range")
        return moment


class BoundedIsoDateTimeFilter(rest_filters.IsoDateTimeFilter):
    """An ISO 8601 time filter that refuses, with a 400, an offset no place uses and years
    the database or Python's calendar cannot hold."""

    field_class = _BoundedIsoDateTimeField


class StrictFilterSet(rest_filters.FilterSet):
    """The filter set every list builds on: a boolean filter refuses a value that is not a
    boolean, and a time filter an offset or year out of bounds, with a 400 instead of ignoring
    it or failing in the database."""

    FILTER_DEFAULTS = {
        **rest_filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
        models.DateTimeField: {"filter_class": BoundedIsoDateTimeFilter},
    }


_FILTERSET_OWN = ("__init__", "qs", "filter_queryset", "get_form_class", "form", "is_valid")


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, without its per-request work when nothing is filtered.

    - A view with ``filterset_fields`` got a new filter set *class* built on every request
      (0.3 ms on the account list); here it is built once per view class and model.
    - A list request that sets no filter (only the paginator's parameters) is answered with the
      queryset as it is, without making the filter set (deep copies of every filter, a form, its
      validation: 0.75 ms). That is what the filter set would have returned: with no data, every
      filter of django-filter's own is skipped and a form of optional fields is valid. So this is
      done only for filter sets that keep django-filter's own behaviour (its filter set methods,
      its own ``filter`` on every filter, no required filter) and have no filter that could read
      one of the parameters present. Anything else goes through django-filter.
    """

    filterset_base = StrictFilterSet
    _classes: dict[tuple[type, type], type[FilterSet] | None] = {}
    _inert: dict[type, bool] = {}

    def get_filterset_class(self, view: Any, queryset: QuerySet | None = None) -> Any:
        if getattr(view, "filterset_class", None) or queryset is None:
            return super().get_filterset_class(view, queryset)
        key = (type(view), queryset.model)
        if key not in self._classes:
            self._classes[key] = super().get_filterset_class(view, queryset)
        return self._classes[key]

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        params = set(request.query_params)
        if params <= _paging_parameters(view) and self._inert_without_data(filterset_class, params):
            return queryset.all()
        return super().filter_queryset(request, queryset, view)

    def _inert_without_data(self, filterset_class: type[FilterSet], params: set[str]) -> bool:
        inert = self._inert.get(filterset_class)
        if inert is None:
            filters = filterset_class.base_filters.values()
            inert = self._inert[filterset_class] = all(
                _from_django_filter(getattr(filterset_class, name)) for name in _FILTERSET_OWN
            ) and all(
                _from_django_filter(type(one).filter) and not one.extra.get("required")
                for one in filters
            )
        names = filterset_class.base_filters.keys()
        return inert and not any(
            param == name or param.startswith(f"{name}_") for param in params for name in names
        )


def _from_django_filter(method: Any) -> bool:
    function = getattr(method, "fget", method)  # a property's getter
    return getattr(function, "__module__", "").startswith("django_filters.")


def _paging_parameters(view: Any) -> set[str]:
    paginator = getattr(view, "paginator", None)
    names = {
        getattr(paginator, attribute, None)
        for attribute in (
            "cursor_query_param",
            "page_query_param",
            "page_size_query_param",
            "limit_query_param",
            "offset_query_param",
        )
    }
    return {name for name in names if name}


class IdCursorPagination(CursorPagination):
    """Keyset pagination on the primary key: the cost of a page does not grow with the list."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class PrincipalRateThrottle(BaseThrottle):
    """A request budget per staff user or API client, counted in fixed windows.

    One pipelined INCR and EXPIRE per request (``tenancy.fastcache``), where DRF's sliding
    window reads and writes the whole request history. For a token request the middleware has
    already counted it, in the same round trip that found the token. Anonymous requests have
    DRF's own budget.
    """

    scope = "principal"

    def allow_request(self, request: Request, view: APIView) -> bool:
        principal = getattr(request, "principal", None)
        if principal is None:
            return True
        window = current_window(api_settings.DEFAULT_THROTTLE_RATES[self.scope])  # type: ignore[arg-type]
        count = getattr(request._request, "counted_requests", None)
        if count is None:
            counter = window.counter(self.scope, f"{principal.kind}:{principal.id}")
            count = fastcache.count_in_window(counter, window.seconds + 1)
        self.wait_seconds = window.ends_in
        return count <= window.allowed

    def wait(self) -> float | None:
        return getattr(self, "wait_seconds", None)
