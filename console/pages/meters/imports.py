"""Registering meters from a CSV file: all or nothing, as the API's ``meters/import`` does; a
refused file shows every bad line with its line number and what is wrong with it."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console.access import page, principal_of
from console.forms import Field, Form, error_map
from metering import services
from metering.api import MeterImportSerializer

MAX_BYTES = 5 * 1024 * 1024
FILE = Field(
    "file",
    _("CSV file"),
    kind="file",
    required=True,
    help=_(
        "UTF-8 (or GB18030, as Excel saves it) with a header row. Columns: %(columns)s; "
        "serial_number, profile and site are required."
    )
    % {"columns": ", ".join(services.CSV_COLUMNS)},
)


def decoded(raw: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte order mark) or GB18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError({"file": gettext("The file is neither UTF-8 nor GB18030 text.")})


@page("meters", "import")
def import_meters(request: HttpRequest) -> HttpResponseBase:
    form = Form([FILE], request.POST if request.method == "POST" else None)
    bad_lines: list[str] = []
    if form.submitted:
        upload = request.FILES.get("file")
        with form.attempt():
            if upload is None:
                raise ValidationError({"file": gettext("Choose a CSV file.")})
            if upload.size is not None and upload.size > MAX_BYTES:
                raise ValidationError({"file": gettext("The file is larger than 5 MB.")})
            body = MeterImportSerializer(data={"csv": decoded(upload.read())})
            if not body.is_valid():
                raise ValidationError({"file": [str(m) for m in body.errors.get("csv", [])]})
            principal = principal_of(request)
            assert principal is not None
            try:
                meters = services.import_meters_csv(
                    principal,
                    body.validated_data["csv"],
                    request.site_scope.site_ids_or_none,  # type: ignore[attr-defined]
                )
            except ValidationError as exc:
                errors = error_map(exc)
                bad_lines = errors.pop("rows", [])
                if bad_lines:
                    errors.setdefault("file", []).append(
                        gettext(
                            "Nothing was imported: fix the lines below and send the file again."
                        )
                    )
                raise ValidationError(errors) from exc
            messages.success(
                request, gettext("%(count)s meters registered.") % {"count": len(meters)}
            )
            return redirect(reverse("console:meters") + "?sort=-id")
    return render(
        request,
        "console/meters/import.html",
        {"form": form, "bad_lines": bad_lines},
        status=400 if form.submitted else 200,
    )
