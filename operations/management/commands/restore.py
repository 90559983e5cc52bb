"""Restore a backup into an empty instance, or check a backup's checksums."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.services import BackupError, backup_restore, backup_verify


class Command(BaseCommand):
    help = (
        "Restore BACKUP (a folder written by manage.py backup) into this instance: "
        "its database (DATABASE_URL) must have no tables and MEDIA_ROOT must be "
        "empty. The checksums are checked before anything is written to the "
        "database, and a file that fails is named; afterwards every table's row "
        "count is compared with the backup's. Then run manage.py migrate if the "
        "code is newer than the backup. With --check, only check the checksums "
        "(e.g. of an off-site copy) and change nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("backup", type=Path, metavar="BACKUP")
        parser.add_argument(
            "--check",
            action="store_true",
            help="only check every file of BACKUP against its manifest",
        )

    def handle(self, *args, **options) -> None:
        backup = options["backup"]
        try:
            if options["check"]:
                manifest = backup_verify(backup=backup)
                self.stdout.write(
                    f"{backup}: all {len(manifest.files)} files match their "
                    f"checksums (taken {manifest.created_at}, "
                    f"{manifest.database['engine']})."
                )
                return
            result = backup_restore(backup=backup)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Restored {backup}: {result.tables} tables ({result.rows} rows, each "
            f"table's count as at the backup) and {result.files} media files "
            f"({result.bytes / 1e6:.1f} MB), every checksum matching."
        )
        if result.unapplied_migrations:
            self.stdout.write(
                f"This code has {len(result.unapplied_migrations)} migrations the "
                "backup predates: run python manage.py migrate."
            )
