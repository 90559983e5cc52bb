"""``manage.py import_experts FILE.csv``: create expert accounts from a CSV file."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation import errors, services


class Command(BaseCommand):
    help = (
        "Create expert accounts from a UTF-8 CSV file with the header "
        "username,email,code,years_experience[,password]. Each expert joins the "
        "'experts' group and gets a profile with the pseudonymous code (e.g. "
        "EXP-0007). Rows without a password get a generated one, printed once. "
        "All rows are checked first; on any error nothing is imported and each "
        "problem is reported with its line number."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("csv_file", help="Path to the CSV file ('-' for stdin).")

    def handle(self, *args, csv_file: str, **options) -> None:
        if csv_file == "-":
            import sys

            text = sys.stdin.read()
        else:
            path = Path(csv_file)
            if not path.is_file():
                raise CommandError(f"{path} does not exist or is not a file.")
            try:
                text = path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError:
                raise CommandError(f"{path} is not UTF-8 text.") from None
        try:
            created = services.experts_import_csv(text=text)
        except errors.InvalidInput as exc:
            raise CommandError(f"Nothing imported.\n{exc.message}") from None
        for user, password in created:
            line = f"{user.username}\t{user.expert_profile.code}"
            if password:
                line += f"\tpassword: {password}"
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"Imported {len(created)} experts."))
