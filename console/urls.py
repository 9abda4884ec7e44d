"""The console's URLs: each page module (``console.pages.*``) brings its own patterns."""

import importlib

from django.urls import include, path

from console.nav import PAGE_MODULES

app_name = "console"

urlpatterns = [
    path("", include(importlib.import_module(module).urlpatterns)) for module in PAGE_MODULES
]
