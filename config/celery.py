"""The Celery app. Workers, beat and the bridge start from it (``celery -A config …``).

With no ``REDIS_URL`` the settings make tasks run eagerly in the caller's process.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("bars", task_cls="tenancy.tasks:TenantTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
