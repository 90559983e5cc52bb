"""Import a folder of microscope recordings listed in a CSV, then preprocess them."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation import errors, services
from config.celery import ensure_broker_folders
from workers.preprocess import recording_preprocess_run

REQUIRED = ("patient", "filename")
OPTIONAL = ("um_per_px", "fps")


@dataclass(frozen=True)
class Row:
    line: int
    patient: str
    path: Path
    um_per_px: float | None
    fps: float | None


def _number(text: str, *, line: int, column: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"line {line}: {column} {text!r} is not a number.") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"line {line}: {column} must be a positive number.")
    return value


def rows_parse(*, csv_path: Path, folder: Path) -> tuple[list[Row], list[str]]:
    """Rows that can be imported, and a message for each row that cannot."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [(name or "").strip() for name in reader.fieldnames or []]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise CommandError(
                f"{csv_path}: the header must have the columns "
                f"{', '.join(REQUIRED + OPTIONAL)} (the last two may be empty); "
                f"missing: {', '.join(missing)}."
            )
        rows, problems = [], []
        root = folder.resolve()
        for line, raw in enumerate(reader, start=2):
            values = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            if not any(values.values()):
                continue
            try:
                if not values["patient"]:
                    raise ValueError(f"line {line}: the patient code is empty.")
                name = values["filename"]
                path = (root / name).resolve()
                if not name or not path.is_relative_to(root):
                    raise ValueError(
                        f"line {line}: filename {name!r} must name a file inside "
                        f"{folder}."
                    )
                if not path.is_file():
                    raise ValueError(f"line {line}: {name} is not in {folder}.")
                rows.append(
                    Row(
                        line=line,
                        patient=values["patient"],
                        path=path,
                        um_per_px=_number(
                            values.get("um_per_px", ""), line=line, column="um_per_px"
                        ),
                        fps=_number(values.get("fps", ""), line=line, column="fps"),
                    )
                )
            except ValueError as exc:
                problems.append(str(exc))
    return rows, problems


class Command(BaseCommand):
    help = (
        "Import the recordings of FOLDER listed in a CSV file (columns: patient, "
        "filename, um_per_px, fps; um_per_px and fps may be empty, fps overrides "
        "the file's frame rate) and queue their preprocessing on the Celery 'cpu' "
        "queue, or run it here with --sync. Files already imported (same content) "
        "are skipped, so the command can be run again after fixing a row."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("folder", type=Path, help="folder holding the recordings")
        parser.add_argument(
            "--csv",
            type=Path,
            default=None,
            help="the CSV file (default: FOLDER/recordings.csv)",
        )
        parser.add_argument(
            "--max-clips",
            type=int,
            default=10,
            help="clips kept per recording (default 10)",
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="preprocess here, one recording after another, instead of queueing",
        )

    def handle(self, *args, **options) -> None:
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        csv_path: Path = options["csv"] or folder / "recordings.csv"
        if not csv_path.is_file():
            raise CommandError(
                f"{csv_path} does not exist; give the CSV with --csv "
                "(columns: patient, filename, um_per_px, fps)."
            )
        if not 1 <= options["max_clips"] <= services.MAX_CLIPS_PER_RECORDING:
            raise CommandError(
                f"--max-clips must be between 1 and {services.MAX_CLIPS_PER_RECORDING}."
            )
        rows, problems = rows_parse(csv_path=csv_path, folder=folder)
        if not options["sync"]:
            ensure_broker_folders()  # the filesystem broker needs them
        counts = {"imported": 0, "skipped": 0, "done": 0}
        bar = tqdm(rows, desc="recordings", unit="file", disable=None)
        for row in bar:
            bar.set_postfix_str(row.path.name)
            message = self._import(row, options, counts)
            if message:
                problems.append(message)
        summary = (
            f"{counts['imported']} imported, {counts['skipped']} already there"
            + (f", {counts['done']} preprocessed" if options["sync"] else " (queued)")
        )
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} rows failed; {summary}.")
        self.stdout.write(self.style.SUCCESS(summary + "."))

    def _import(self, row: Row, options: dict, counts: dict) -> str | None:
        name = row.path.name
        try:
            patient = services.patient_get_or_create(code=row.patient)
            with row.path.open("rb") as handle:
                recording = services.recording_create_from_upload(
                    file=File(handle, name=name),
                    patient=patient,
                    original_name=name,
                    um_per_px=row.um_per_px,
                    fps=row.fps,
                    max_clips=options["max_clips"],
                )
        except services.DuplicateRecording as exc:
            counts["skipped"] += 1
            tqdm.write(f"line {row.line}: {name} skipped: {exc.message}")
            return None
        except errors.DomainError as exc:
            return f"line {row.line}: {name}: {exc.message}"
        counts["imported"] += 1
        if not options["sync"]:
            services.recording_enqueue(recording=recording)
            return None
        outcome = recording_preprocess_run(recording_id=recording.pk).as_dict()
        if not isinstance(outcome, dict) or outcome.get("status") != "done":
            recording.refresh_from_db()
            return f"line {row.line}: {name}: {recording.error_message}"
        counts["done"] += 1
        tqdm.write(f"line {row.line}: {name}: {outcome['n_clips']} clips")
        return None
