"""Console pages of the bill stage (核): tariffs and their assignments, bill runs, bills and
their corrections, flagged bills, and the billing settings."""

from __future__ import annotations

from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from console.nav import Entry
from console.pages.billing import bills, flagged, runs, settings, tariffs

NAV = [
    Entry("bill", _("Bill runs"), "console:bill-runs", "bill_runs"),
    Entry("bill", _("Bills"), "console:bills", "bills"),
    Entry("bill", _("Flagged bills"), "console:flagged-bills", "flagged_bills"),
    Entry("bill", _("Tariffs"), "console:tariffs", "tariffs"),
    Entry("bill", _("Tariff assignments"), "console:tariff-assignments", "tariff_assignments"),
    Entry("bill", _("Billing settings"), "console:billing-settings", "billing_settings"),
]

urlpatterns: list[URLPattern] = [
    path("tariffs/", tariffs.tariffs, name="tariffs"),
    path("tariffs/new/", tariffs.tariff_new, name="tariff-new"),
    path("tariffs/<int:tariff_id>/", tariffs.tariff, name="tariff"),
    path(
        "tariffs/<int:tariff_id>/versions/new/",
        tariffs.tariff_version_new,
        name="tariff-version-new",
    ),
    path(
        "tariffs/<int:tariff_id>/versions/<int:version_id>/remove/",
        tariffs.tariff_version_remove,
        name="tariff-version-remove",
    ),
    path("tariff-assignments/", tariffs.tariff_assignments, name="tariff-assignments"),
    path("tariff-assignments/new/", tariffs.tariff_assignment_new, name="tariff-assignment-new"),
    path("bill-runs/", runs.bill_runs, name="bill-runs"),
    path("bill-runs/new/", runs.bill_run_new, name="bill-run-new"),
    path("bill-runs/<int:run_id>/", runs.bill_run, name="bill-run"),
    path("bill-runs/<int:run_id>/progress/", runs.bill_run_progress, name="bill-run-progress"),
    path("bill-runs/<int:run_id>/resume/", runs.bill_run_resume, name="bill-run-resume"),
    path(
        "bill-runs/<int:run_id>/held-back.csv",
        runs.bill_run_held_back,
        name="bill-run-held-back",
    ),
    path("bill-runs/<int:run_id>/approve/", runs.bill_run_approve, name="bill-run-approve"),
    path("bills/", bills.bills, name="bills"),
    path("bills/<int:bill_id>/", bills.bill, name="bill"),
    path("bills/<int:bill_id>/document/", bills.bill_document, name="bill-document"),
    path("bills/<int:bill_id>/credit/", bills.bill_credit, name="bill-credit"),
    path("bills/<int:bill_id>/rebill/", bills.bill_rebill, name="bill-rebill"),
    path("bills/<int:bill_id>/approve/", bills.bill_approve, name="bill-approve"),
    path("bills/<int:bill_id>/void/", bills.bill_void, name="bill-void"),
    path("flagged-bills/", flagged.flagged_bills, name="flagged-bills"),
    path("flagged-bills/approve/", flagged.flagged_bills_approve, name="flagged-bills-approve"),
    path("billing-settings/", settings.billing_settings, name="billing-settings"),
]
