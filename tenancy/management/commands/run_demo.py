import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from tenancy.schedules import InProcessScheduler, sync_periodic_jobs


class Command(BaseCommand):
    help = (
        "Serve the embedded demo: the site on 127.0.0.1:PORT and, with no broker configured, "
        "an in-process scheduler for the periodic jobs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: object, **options: object) -> None:
        sync_periodic_jobs()
        scheduler = None
        if settings.CELERY_TASK_ALWAYS_EAGER:
            scheduler = InProcessScheduler()
            scheduler.start()
            self.stdout.write("In-process scheduler running the periodic jobs.")
        try:
            call_command("runserver", f"{options['host']}:{options['port']}", use_reloader=False)
        finally:
            if scheduler is not None:
                scheduler.stop()
