"""Console pages: administration."""

from __future__ import annotations

from django.urls import URLPattern

from console.nav import Entry

NAV: list[Entry] = []

urlpatterns: list[URLPattern] = []
