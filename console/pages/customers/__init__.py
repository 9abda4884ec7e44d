"""Console pages: finding customers and accounts, their pages, and the forms that register and
change them (customers, premises, accounts, contacts)."""

from __future__ import annotations

from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from console.nav import Entry
from console.pages.customers import edit, records, search

NAV = [
    Entry("customers", _("Find customers and accounts"), "console:customer-search", "customers"),
]

urlpatterns: list[URLPattern] = [
    path("customers/", search.customer_search, name="customer-search"),
    path("customers/new/", edit.customer_new, name="customer-new"),
    path("customers/<int:customer_id>/", records.customer_page, name="customer"),
    path("customers/<int:customer_id>/edit/", edit.customer_edit, name="customer-edit"),
    path("customers/<int:customer_id>/reveal/", search.customer_reveal, name="customer-reveal"),
    path("customers/<int:customer_id>/accounts/new/", edit.account_new, name="account-new"),
    path("customers/<int:customer_id>/contacts/new/", edit.contact_new, name="contact-new"),
    path("accounts/<int:account_id>/", records.account_page, name="account"),
    path("accounts/<int:account_id>/edit/", edit.account_edit, name="account-edit"),
    path("premises/new/", edit.premise_new, name="premise-new"),
    path("premises/<int:premise_id>/edit/", edit.premise_edit, name="premise-edit"),
    path("contacts/<int:contact_id>/edit/", edit.contact_edit, name="contact-edit"),
    path("contacts/<int:contact_id>/remove/", edit.contact_remove, name="contact-remove"),
]
