"""Console pages of verification (核): the queue of suspect readings, corrections with four
eyes, period consumption, line loss and the verification settings. Each page calls the same
services as the API (``verification.services``, ``verification.periods``)."""

from __future__ import annotations

from django.urls import URLPattern
from django.utils.translation import gettext_lazy as _

from console.nav import Entry
from console.pages.verification import corrections, line_losses, periods, queue, settings

NAV: list[Entry] = [
    Entry("verify", _("Verification queue"), "console:verification-queue", "verification"),
    Entry("verify", _("Corrections"), "console:corrections", "corrections"),
    Entry("verify", _("Period consumption"), "console:periods", "periods"),
    Entry("verify", _("Line loss"), "console:line-losses", "line_losses"),
    Entry(
        "verify",
        _("Verification settings"),
        "console:verification-settings",
        "verification_settings",
    ),
]

urlpatterns: list[URLPattern] = [
    *queue.urlpatterns,
    *corrections.urlpatterns,
    *periods.urlpatterns,
    *line_losses.urlpatterns,
    *settings.urlpatterns,
]
