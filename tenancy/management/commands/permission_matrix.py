from django.core.management.base import BaseCommand

from tenancy.permissions import matrix_markdown


class Command(BaseCommand):
    help = "Print the permission matrix as the Markdown table the README carries."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(matrix_markdown())
