"""Lists in the console: filters kept in the URL, keyset pagination, sorting on indexed columns,
and CSV export with personal data masked unless the role may reveal it, every export audited.

A page describes its list declaratively::

    listing = Listing(
        request, queryset,
        columns=[Column("serial", _("Serial"), sort="serial", link=meter_url), ...],
        filterset=MeterFilter, default_sort="-id", export_name="meters",
    )

and renders ``console/_list.html`` with it. Pages are cut with DRF's cursor pagination (the
position of the last row, not an offset), so a page costs the same at the end of a long list
as at the start; the filter form is a django-filter ``FilterSet`` read from the query string.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import django_filters
from django.db import models
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import formats, timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from console.access import can, principal_of
from tenancy.audit import AuditAction, record_audit
from tenancy.context import use_tenant

PAGE_SIZE = 50
EXPORT_BATCH = 2000


def display(value: Any) -> str:
    """A value as staff read it: times in the tenant's zone, no ``None``."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    if isinstance(value, date):
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, Decimal):
        return f"{value:,}"
    return str(value)


def export_text(value: Any) -> str:
    """A value as a spreadsheet reads it: plain numbers (no thousands separators), times in
    the tenant's zone as ``YYYY-MM-DD HH:MM:SS``, days as ``YYYY-MM-DD``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return display(value)


def _attribute(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part)
        if callable(obj) and part.startswith("get_") and part.endswith("_display"):
            obj = obj()
    return obj


@dataclass(frozen=True)
class Column:
    """One column: where its value comes from, its heading, and optionally the indexed field it
    sorts by, a link for the cell, and a mask for personal data."""

    key: str
    label: Promise | str
    sort: str | None = None
    value: Callable[[Any], Any] | None = None
    link: Callable[[Any], str | None] | None = None
    numeric: bool = False
    # Personal data: always masked on the page (a person reveals one record at a time, audited);
    # in an export (itself audited) unmasked for the roles that may reveal it.
    mask: Callable[[str], str] | None = None
    reveal: tuple[str, str] = ("customers", "reveal")
    # A button beside the cell's text on the page (never in an export): the URL it posts to and
    # its label, or None where the row offers none (a locked card's unlock, for who may unlock).
    action: Callable[[Any], tuple[str, str] | None] | None = None

    def raw(self, obj: Any) -> Any:
        return self.value(obj) if self.value is not None else _attribute(obj, self.key)


@dataclass(frozen=True)
class Cell:
    text: str
    url: str | None = None
    numeric: bool = False
    action_url: str | None = None
    action_label: str = ""


@dataclass(frozen=True)
class Row:
    id: Any
    cells: list[Cell]
    url: str | None = None


@dataclass(frozen=True)
class Heading:
    label: str
    sort_url: str | None
    sorted: str | None  # "ascending", "descending" or None (aria-sort)


class _Cursor(CursorPagination):
    page_size = PAGE_SIZE
    cursor_query_param = "cursor"

    def __init__(self, ordering: tuple[str, ...]) -> None:
        self.ordering = ordering


class Listing:
    """A filtered, sorted, keyset-paginated list of a queryset, ready for the list template."""

    def __init__(
        self,
        request: HttpRequest,
        queryset: models.QuerySet,
        *,
        columns: Sequence[Column],
        filterset: type[django_filters.FilterSet] | None = None,
        default_sort: str = "-id",
        export_name: str | None = None,
        row_url: Callable[[Any], str] | None = None,
    ) -> None:
        self.request = request
        self.columns = list(columns)
        self.export_name = export_name
        self.row_url = row_url
        self.filters = (
            filterset(request.GET or None, queryset=queryset, request=request)
            if filterset
            else None
        )
        self.valid = self.filters is None or not request.GET or self.filters.is_valid()
        if self.filters is not None and self.valid and request.GET:
            queryset = self.filters.qs
        self.sortable = {c.sort.lstrip("-"): c for c in self.columns if c.sort}
        self.sort = self._chosen_sort(default_sort)
        self.queryset = queryset if self.valid else queryset.none()
        self._revealed = {c.key: can(request, *c.reveal) for c in self.columns if c.mask}
        self._exporting = False

    def _chosen_sort(self, default: str) -> str:
        asked = self.request.GET.get("sort", "")
        return asked if asked.lstrip("-") in self.sortable else default

    @property
    def ordering(self) -> tuple[str, ...]:
        return (self.sort,) if self.sort.lstrip("-") in ("id", "pk") else (self.sort, "-id")

    # --- one page ------------------------------------------------------------------------

    def page(self) -> list[Any]:
        if not hasattr(self, "_page"):
            self._paginator = _Cursor(self.ordering)
            self._drf_request = Request(self.request)
            self._page = self._paginator.paginate_queryset(self.queryset, self._drf_request) or []
        return self._page

    @property
    def next_url(self) -> str | None:
        self.page()
        return self._relative(self._paginator.get_next_link())

    @property
    def previous_url(self) -> str | None:
        self.page()
        return self._relative(self._paginator.get_previous_link())

    @staticmethod
    def _relative(link: str | None) -> str | None:
        if link is None:
            return None
        _, _, rest = link.partition("://")
        return "/" + rest.partition("/")[2]

    def cells(self, obj: Any) -> list[Cell]:
        row = []
        for column in self.columns:
            raw = column.raw(obj)
            text = export_text(raw) if self._exporting else display(raw)
            if column.mask and raw and not (self._exporting and self._revealed[column.key]):
                text = column.mask(str(raw))
            url = column.link(obj) if column.link else None
            action = column.action(obj) if column.action and not self._exporting else None
            row.append(Cell(text, url, column.numeric, *(action or (None, ""))))
        return row

    @property
    def rows(self) -> list[Row]:
        return [
            Row(obj.pk, self.cells(obj), self.row_url(obj) if self.row_url else None)
            for obj in self.page()
        ]

    @property
    def headings(self) -> list[Heading]:
        result = []
        for column in self.columns:
            if not column.sort:
                result.append(Heading(str(column.label), None, None))
                continue
            field = column.sort.lstrip("-")
            current = self.sort.lstrip("-") == field
            descending = self.sort.startswith("-")
            state = ("descending" if descending else "ascending") if current else None
            flipped = field if current and descending else f"-{field}"
            result.append(Heading(str(column.label), self._url(sort=flipped), state))
        return result

    def _url(self, **changes: str) -> str:
        query = self.request.GET.copy()
        query.pop("cursor", None)
        for key, value in changes.items():
            query[key] = value
        return f"{self.request.path}?{query.urlencode()}"

    @property
    def export_url(self) -> str | None:
        return self._url(export="csv") if self.export_name else None

    @property
    def wants_export(self) -> bool:
        return bool(self.export_name) and self.request.GET.get("export") == "csv"

    # --- CSV export ----------------------------------------------------------------------

    def export(self) -> StreamingHttpResponse:
        """Every row that matches the filters as CSV (UTF-8 with a byte order mark, so Excel
        opens Chinese text), personal data masked unless the role may reveal it; audited."""
        principal = principal_of(self.request)
        assert principal is not None and self.export_name is not None  # @page did
        filters = {k: v for k, v in self.request.GET.items() if k not in ("export", "cursor")}
        total = self.queryset.count()
        record_audit(
            principal,
            AuditAction.EXPORT_DOWNLOADED,
            object_type=self.export_name,
            after={"filters": filters, "rows": total, "masked": not all(self._revealed.values())},
        )
        queryset = self.queryset.order_by(*self.ordering)
        self._exporting = True
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(
            self._csv_lines(queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{self.export_name}-{stamp}.csv"'
        return response

    def _csv_lines(self, queryset: Iterable[Any]) -> Iterator[str]:
        """The file, line by line. It is read after the view returns, so it sets the tenant, the
        time zone and the language of the request again."""
        principal = principal_of(self.request)
        assert principal is not None and principal.tenant is not None
        language = translation.get_language()
        buffer = _Line()
        writer = csv.writer(buffer)
        with (
            use_tenant(principal.tenant),
            timezone.override(principal.tenant.zone),
            translation.override(language),
        ):
            yield "\ufeff"
            writer.writerow([str(column.label) for column in self.columns])
            yield buffer.take()
            for obj in queryset.iterator(chunk_size=EXPORT_BATCH):  # type: ignore[attr-defined]
                writer.writerow([_csv_safe(cell.text) for cell in self.cells(obj)])
                yield buffer.take()


class _Line:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def take(self) -> str:
        text, self.text = self.text, ""
        return text


def _csv_safe(text: str) -> str:
    """Spreadsheet programs run a cell that starts with = + - @ as a formula: quote it."""
    if text == "—":
        return ""
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _number(text)):
        return "'" + text
    return text


def _number(text: str) -> bool:
    try:
        Decimal(text.replace(",", ""))
    except ArithmeticError:
        return False
    return True


def listing_response(
    request: HttpRequest, template: str, context: dict[str, Any]
) -> HttpResponseBase:
    """A list page: the CSV export when it is asked for, else the page with
    ``context["listing"]`` (400 while a filter is not valid)."""
    listing: Listing = context["listing"]
    if listing.wants_export:
        return listing.export()
    return render(request, template, context, status=200 if listing.valid else 400)
