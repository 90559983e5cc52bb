"""Back up the database and MEDIA_ROOT into a new, checksummed folder."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.services import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Write a backup into a new folder OUT/spermgrade-<UTC time>/: the database "
        "(PostgreSQL: pg_dump custom format, read in one snapshot; SQLite: the "
        "online backup API, so the demo can be backed up while it runs), every "
        "file under MEDIA_ROOT (recordings, clips, snapshots, model artifacts) and "
        "manifest.json + SHA256SUMS with the checksum of every file. The folder "
        "appears only once it is complete. Restore it with: manage.py restore "
        "OUT/spermgrade-<time>. Copy the folder off-site as it is."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--out",
            type=Path,
            required=True,
            metavar="FOLDER",
            help="folder that holds the backups (created if missing); not inside "
            "MEDIA_ROOT",
        )
        parser.add_argument(
            "--keep",
            type=int,
            metavar="N",
            help="afterwards remove all but the newest N backups in FOLDER "
            "(default: remove none)",
        )

    def handle(self, *args, **options) -> None:
        try:
            result = backup_create(out=options["out"], keep=options["keep"])
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        manifest = result.manifest
        database = manifest.database
        dump = manifest.files[0]
        self.stdout.write(
            f"Wrote {result.folder}: {database['engine']} database "
            f"({len(database['tables'])} tables, {sum(database['tables'].values())} "
            f"rows, {dump.bytes / 1e6:.1f} MB) and media ({manifest.media['files']} "
            f"files, {manifest.media['bytes'] / 1e6:.1f} MB)."
        )
        if result.missing:
            self.stderr.write(
                f"{len(result.missing)} files the database names were already "
                f"missing from MEDIA_ROOT (listed in manifest.json): "
                + ", ".join(result.missing[:5])
            )
        for folder in result.pruned:
            self.stdout.write(f"Removed the older backup {folder.name}.")
