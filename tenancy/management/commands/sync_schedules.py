from django.core.management.base import BaseCommand

from tenancy.schedules import sync_periodic_jobs


class Command(BaseCommand):
    help = "Write the platform's periodic jobs into the beat schedule tables (safe to rerun)."

    def handle(self, *args: object, **options: object) -> None:
        for task in sync_periodic_jobs():
            self.stdout.write(f"{task.name}: {task.task} every {task.interval}")
