"""Checks that stop a production deploy from serving a broken site.

Static files: production serves them from ``STATIC_ROOT`` through a manifest of hashed names
(``CompressedManifestStaticFilesStorage``). Without ``collectstatic`` every page that links a
static file (the login page, the admin, the API docs) answers 500, and ``check --deploy`` used
to be clean. So the deploy check reports it, and the web process refuses to start with it.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

IGNORED = ["CVS", ".*", "*~"]  # collectstatic's default ignore patterns


def uncollected_static_files() -> list[str]:
    """Static files the finders know that the collected manifest lacks (all of them when
    nothing was collected); empty where static files are served without a manifest."""
    if not isinstance(staticfiles_storage, ManifestFilesMixin):
        return []
    wanted = sorted(
        {path for finder in finders.get_finders() for path, _storage in finder.list(IGNORED)}
    )
    try:
        with open(staticfiles_storage.path(staticfiles_storage.manifest_name), "rb") as manifest:
            collected = json.load(manifest)["paths"]
    except (OSError, ValueError, KeyError):
        return wanted
    return [path for path in wanted if path not in collected]


def _message(missing: list[str]) -> str:
    return (
        f"{len(missing)} static files are not collected into {settings.STATIC_ROOT} "
        f"(e.g. {missing[0]}): run 'python manage.py collectstatic --noinput' before serving."
    )


@register(Tags.staticfiles, deploy=True)
def check_static_files_collected(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    missing = uncollected_static_files()
    return [Error(_message(missing), id="bars.E001")] if missing else []


def refuse_to_serve_without_static_files() -> None:
    """Called by the WSGI module: production does not start serving pages it cannot render."""
    if settings.DEBUG:
        return
    missing = uncollected_static_files()
    if missing:
        raise ImproperlyConfigured(_message(missing))
