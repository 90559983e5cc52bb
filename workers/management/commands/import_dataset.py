"""Import an export bundle into this instance (checked first, idempotent)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exports.importer import BundleError, bundle_import


class Command(BaseCommand):
    help = (
        "Import a SpermGrade export zip: every checksum is verified first (a "
        "tampered, truncated or foreign file is refused and nothing is written); "
        "importing the same bundle again changes nothing. Experts arrive as "
        "accounts named by their pseudonym, without a usable password."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("bundle", type=Path)

    def handle(self, *args, **options) -> None:
        if not options["bundle"].is_file():
            raise CommandError(f"{options['bundle']} does not exist")
        try:
            result = bundle_import(options["bundle"])
        except BundleError as exc:
            raise CommandError(exc.message) from exc
        if result["already_imported"]:
            self.stdout.write("This bundle was imported before: nothing changed.")
        else:
            self.stdout.write(
                f"Imported {result['clips']} clips, {result['votes']} votes, "
                f"{result['experts']} experts."
            )
