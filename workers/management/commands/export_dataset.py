"""Write an export bundle here, synchronously (the admin page queues the same)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exports.bundle import bundle_write
from registry import selectors
from registry.models import Snapshot


class Command(BaseCommand):
    help = (
        "Export the dataset as one pseudonymised, checksummed zip: clip arrays and "
        "videos, votes (long format) and their history, distributions, recording "
        "summaries, a crowd-kit CSV, the modeling manifest (so `python -m modeling "
        "train --data <zip>` trains on it), optionally a snapshot's folds and a "
        "model version's predictions, and a datasheet."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="the .zip to write")
        parser.add_argument("--snapshot", default="", help="snapshot sha256 (folds)")
        # Not --version: Django's base command already defines it (its own version).
        parser.add_argument(
            "--model-version",
            type=int,
            metavar="N",
            help="model version number: its snapshot's folds and its predictions",
        )
        parser.add_argument("--licence", default="", help="licence for the datasheet")

    def handle(self, *args, **options) -> None:
        version = None
        if options["model_version"] is not None:
            number = options["model_version"]
            version = selectors.version_list().filter(number=number).first()
            if version is None:
                raise CommandError(f"there is no model version v{number}")
        snapshot = None
        if options["snapshot"]:
            snapshot = Snapshot.objects.filter(sha256=options["snapshot"]).first()
            if snapshot is None:
                raise CommandError(f"there is no snapshot {options['snapshot']}")
        out = options["out"]
        if out.suffix != ".zip":
            raise CommandError("--out must name a .zip file")
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = bundle_write(
            out, snapshot=snapshot, version=version, licence=options["licence"]
        )
        self.stdout.write(
            f"Wrote {out}: {summary['n_clips']} clips, {summary['n_votes']} votes, "
            f"{summary['bytes'] / 1e6:.1f} MB"
        )
