"""Dates and times as Chinese utility staff read them in the console and on documents:
2026-11-30 and 2026-11-30 09:15 (Django's zh-hans default, 2026年11月30日, sat beside the
ISO times of progress panels and exports)."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
