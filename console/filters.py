"""Filters for console lists: what staff type (a local date, a name), turned into lookups on
indexed columns."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenancy.models import EARLIEST_CALENDAR_DAY, LATEST_CALENDAR_DAY


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class DayInput(forms.DateInput):
    input_type = "date"


class LocalDayFilter(django_filters.DateFilter):
    """A day in the tenant's zone: ``since`` takes the rows from its first moment, ``until``
    the rows up to its last (``upto=True``)."""

    def __init__(self, *args: Any, upto: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("widget", DayInput)
        kwargs.setdefault(
            "validators",
            [MinValueValidator(EARLIEST_CALENDAR_DAY), MaxValueValidator(LATEST_CALENDAR_DAY)],
        )
        super().__init__(*args, **kwargs)
        self.upto = upto

    def filter(self, qs: QuerySet, value: date | None) -> QuerySet:
        if value is None:
            return qs
        if self.upto:
            return qs.filter(
                **{f"{self.field_name}__lt": local_midnight(value + timedelta(days=1))}
            )
        return qs.filter(**{f"{self.field_name}__gte": local_midnight(value)})


# As the API's PeriodField: [0-9], not \d, which takes the full-width digits an input method types.
PERIOD_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"


class PeriodFilter(django_filters.CharFilter):
    """A billing period, ``YYYY-MM`` from 2000-01 to 2099-12: anything else is a typing error
    the list answers with 400 and the reason beside the field, not an empty list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Period (YYYY-MM)"))
        kwargs.setdefault(
            "validators",
            [RegexValidator(PERIOD_PATTERN, _("A period is YYYY-MM, from 2000-01 to 2099-12."))],
        )
        super().__init__(*args, **kwargs)


SINCE_LABEL = _("From (day)")
UNTIL_LABEL = _("To (day)")
