import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenancy.permissions import matrix_markdown

START, END = "<!-- permission-matrix:start -->", "<!-- permission-matrix:end -->"


def replace_matrix(text: str) -> str:
    if START not in text or END not in text:
        raise CommandError(f"the file has no {START} … {END} section")
    section = f"{START}\n{matrix_markdown()}\n{END}"
    return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _m: section, text, flags=re.S)


class Command(BaseCommand):
    help = "Print the permission matrix as Markdown, or write it into a file's marked section."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--write", metavar="FILE", help="Update the section in FILE (README.md)."
        )

    def handle(self, *args: object, **options: object) -> None:
        target = options.get("write")
        if not target:
            self.stdout.write(matrix_markdown())
            return
        path = Path(str(target))
        path.write_text(replace_matrix(path.read_text()))
        self.stdout.write(f"updated the permission matrix in {path}")
