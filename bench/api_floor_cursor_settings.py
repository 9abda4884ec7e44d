"""The floor's settings (../shared/baselines/api_floor/floor/settings.py, left unmodified) with
its account list paginated by cursor as the platform's is, for ``bench.api``'s like-for-like
list comparison.

gunicorn runs in the floor's directory with the project root on ``PYTHONPATH`` and
``DJANGO_SETTINGS_MODULE=bench.api_floor_cursor_settings``. The pagination class lives in a
module of its own: DRF's pagination module must not be imported while settings load.
"""

from floor.settings import *  # type: ignore[import-not-found]  # noqa: F403
from floor.settings import REST_FRAMEWORK as FLOOR_REST_FRAMEWORK

REST_FRAMEWORK = {
    **FLOOR_REST_FRAMEWORK,
    "DEFAULT_PAGINATION_CLASS": "bench.api_floor_pagination.FloorCursorPagination",
}
