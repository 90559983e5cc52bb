"""Import a bundle (``exports.bundle``) into this instance, after checking it.

Every checksum is verified before anything is written; a tampered, truncated or
foreign zip is refused with a clear message. The import itself is one database
transaction (media files written for it are removed if it fails), and a bundle
already imported is recognised by the hash of its checksums file and skipped.
Imported experts get accounts named by their pseudonym, with no usable password
(an admin may activate them); patients keep the bundle's pseudonyms as codes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import OuterRef, Subquery

from annotation.errors import DomainError
from annotation.models import (
    Clip,
    ExpertProfile,
    Patient,
    RepeatVote,
    Vote,
    VoteHistory,
)
from annotation.roles import EXPERTS_GROUP
from exports.bundle import FORMAT, VERSION
from exports.models import ImportedBundle


class BundleError(DomainError):
    status_code = 400


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(
            f"{Path(path).name} is not a readable zip file ({exc}); export it again."
        ) from None


def bundle_verify(path: str | Path) -> str:
    """Check format, version and every checksum; returns the checksums' hash."""
    with _open(Path(path)) as bundle:
        names = set(bundle.namelist())
        if "FORMAT.json" not in names or "checksums.sha256" not in names:
            raise BundleError(
                "This zip is not a SpermGrade export (FORMAT.json or "
                "checksums.sha256 is missing)."
            )
        try:
            fmt = json.loads(bundle.read("FORMAT.json"))
            listing = bundle.read("checksums.sha256")
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise BundleError(f"The bundle is damaged: {exc}") from None
        if fmt.get("format") != FORMAT:
            raise BundleError(f"Unknown bundle format {fmt.get('format')!r}.")
        if fmt.get("version") != VERSION:
            raise BundleError(
                f"Bundle format version {fmt.get('version')!r}; this SpermGrade "
                f"reads version {VERSION}."
            )
        expected = {}
        for line in listing.decode().splitlines():
            digest, _, name = line.partition("  ")
            expected[name] = digest
        members = names - {"checksums.sha256"}
        if set(expected) != members:
            extra = sorted(members - set(expected))[:3]
            missing = sorted(set(expected) - members)[:3]
            raise BundleError(
                f"The bundle's files do not match its checksum list (unlisted: "
                f"{extra}, missing: {missing}); it was altered or truncated."
            )
        for name, digest in expected.items():
            sha = hashlib.sha256()
            try:
                with bundle.open(name) as fh:
                    while block := fh.read(1 << 20):
                        sha.update(block)
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise BundleError(f"{name} is damaged or truncated: {exc}") from None
            if sha.hexdigest() != digest:
                raise BundleError(
                    f"{name} does not match its checksum: the bundle was altered."
                )
        return hashlib.sha256(listing).hexdigest()


BATCH = 5000

try:  # errors raised by raw COPY cursors are psycopg's own, not Django's
    from psycopg import Error as _PsycopgError
except ImportError:  # pragma: no cover - SQLite-only installs
    _PsycopgError = DatabaseError
_ROW_ERRORS = (DatabaseError, _PsycopgError, ValueError, KeyError, TypeError)


def _rows(bundle: zipfile.ZipFile, name: str):
    with bundle.open(name) as fh:
        yield from csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8"))


def _when(text: str):
    return datetime.fromisoformat(text) if text else None


def bundle_import(path: str | Path) -> dict:
    """Import a verified bundle; returns what was created (or that it was there)."""
    fingerprint = bundle_verify(path)
    if ImportedBundle.objects.filter(checksums_sha256=fingerprint).exists():
        return {"already_imported": True, "clips": 0, "votes": 0}
    written: list[str] = []
    try:
        with _open(Path(path)) as bundle, transaction.atomic():
            result = _import(bundle, written)
            ImportedBundle.objects.create(
                checksums_sha256=fingerprint,
                n_clips=result["clips"],
                n_votes=result["votes"],
            )
    except _ROW_ERRORS as exc:
        for name in written:
            default_storage.delete(name)
        raise BundleError(
            "The bundle's rows cannot be stored here (a bad grade, time, number or "
            "a duplicate vote); nothing was imported."
        ) from exc
    except Exception:
        for name in written:
            default_storage.delete(name)
        raise
    return {"already_imported": False, **result}


def _import(bundle: zipfile.ZipFile, written: list[str]) -> dict:
    User = get_user_model()
    from django.contrib.auth.models import Group

    experts_group, _ = Group.objects.get_or_create(name=EXPERTS_GROUP)
    meta = [json.loads(line) for line in bundle.read("clips.jsonl").splitlines()]
    synthetic = json.loads(bundle.read("FORMAT.json")).get("synthetic", False)
    members = set(bundle.namelist())
    patients: dict[str, Patient] = {}
    clip_of: dict[str, Clip] = {}
    pending: list[tuple[str, Clip]] = []

    def clips_flush() -> None:
        # Created in batches; PostgreSQL and SQLite both return the new ids.
        Clip.objects.bulk_create([clip for _, clip in pending], batch_size=BATCH)
        clip_of.update(pending)
        pending.clear()

    for row in meta:
        code = row["patient"][:64]
        if code not in patients:
            patients[code], _ = Patient.objects.get_or_create(
                code=code, defaults={"is_synthetic": row["synthetic"]}
            )
        clip = Clip(
            patient=patients[code],
            frame_start=row["frame_start"],
            frame_end=row["frame_end"],
            n_frames=row["n_frames"],
            # bundles before the motion span had no "fps": the clip ran at the
            # source rate
            fps=row.get("fps", row["source_fps"]),
            source_fps=row["source_fps"],
            frame_stride=row.get("stride", 1.0),
            size_px=row["size_px"],
            track=row["track"],
            speed=row["speed"],
            speed_unit=row["speed_unit"],
            kinematics=row["kinematics"] or {},
            is_synthetic=row["synthetic"],
            latent_quality=row.get("latent_quality"),
        )
        array = f"clips/{row['clip']}.npy"
        if array in members:
            name = default_storage.save(
                f"clips/imported/{row['clip']}.npy", ContentFile(bundle.read(array))
            )
            written.append(name)
            clip.array_file.name = name
        if row.get("video"):
            name = default_storage.save(
                f"clips/imported/{row['clip']}.mp4",
                ContentFile(bundle.read(row["video"])),
            )
            written.append(name)
            clip.video_file.name = name
        pending.append((row["clip"], clip))
        if len(pending) >= BATCH:
            clips_flush()
    clips_flush()
    # Votes and history stream through in batches: memory does not grow with them.
    expert_of: dict[str, object] = {}

    def expert(pseudonym: str):
        if pseudonym not in expert_of:
            user, created = User.objects.get_or_create(username=pseudonym)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
                user.groups.add(experts_group)
                ExpertProfile.objects.get_or_create(
                    user=user,
                    defaults={"code": pseudonym[:32], "is_simulated": synthetic},
                )
            expert_of[pseudonym] = user
        return expert_of[pseudonym]

    from django.db import connection

    if connection.vendor == "postgresql":
        n_votes = _votes_import_pg(bundle, clip_of, expert)
        return {
            "clips": len(clip_of),
            "votes": n_votes,
            "experts": len(expert_of),
            "clip_ids": {name: clip.pk for name, clip in clip_of.items()},
        }
    n_votes = 0
    plain, repeats = [], []

    def flush() -> None:
        Vote.objects.bulk_create(plain, batch_size=BATCH)
        RepeatVote.objects.bulk_create(repeats, batch_size=BATCH)
        plain.clear()
        repeats.clear()

    def clip(name: str, listing: str) -> Clip:
        if name not in clip_of:
            raise BundleError(f"{listing} names clips that clips.jsonl does not list.")
        return clip_of[name]

    for v in _rows(bundle, "votes.csv"):
        model = RepeatVote if v["is_repeat"] == "1" else Vote
        row = model(
            clip=clip(v["clip"], "votes.csv"),
            expert=expert(v["expert"]),
            grade=v["grade"],
            created_at=_when(v["created_at"]),
            updated_at=_when(v["updated_at"]),
            seconds_spent=float(v["seconds_spent"] or 0),
        )
        (repeats if model is RepeatVote else plain).append(row)
        n_votes += 1
        if len(plain) + len(repeats) >= BATCH:
            flush()
    flush()
    history = []
    for h in _rows(bundle, "vote_history.csv"):
        history.append(
            VoteHistory(
                expert=expert(h["expert"]),
                clip=clip(h["clip"], "vote_history.csv"),
                action=h["action"],
                grade=h["grade"],
                previous_grade=h["previous_grade"],
                is_repeat=h["is_repeat"] == "1",
                at=_when(h["at"]),
            )
        )
        if len(history) >= BATCH:
            VoteHistory.objects.bulk_create(history)
            history.clear()
    VoteHistory.objects.bulk_create(history)
    # Link each history row to its vote, in the database.
    VoteHistory.objects.filter(
        clip__in=[c.pk for c in clip_of.values()], is_repeat=False, vote__isnull=True
    ).update(
        vote_id=Subquery(
            Vote.objects.filter(
                clip_id=OuterRef("clip_id"), expert_id=OuterRef("expert_id")
            ).values("pk")[:1]
        )
    )
    return {
        "clips": len(clip_of),
        "votes": n_votes,
        "experts": len(expert_of),
        "clip_ids": {name: clip.pk for name, clip in clip_of.items()},
    }


def _votes_import_pg(bundle: zipfile.ZipFile, clip_of: dict, expert) -> int:
    """votes.csv and vote_history.csv straight into staging tables by COPY, then
    into the real tables by INSERT ... SELECT joined to the new ids (the vote
    count triggers run once per statement): millions of rows in seconds."""
    from django.db import connection

    def stream(copy, name: str) -> None:
        with bundle.open(name) as fh:
            while block := fh.read(1 << 20):
                copy.write(block)

    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE import_vote (clip text, expert text, grade text, "
            "created_at timestamptz, updated_at timestamptz, seconds_spent float8, "
            "is_repeat int) ON COMMIT DROP"
        )
        cursor.execute(
            "CREATE TEMP TABLE import_history (clip text, expert text, action text, "
            "grade text, previous_grade text, is_repeat int, at timestamptz) "
            "ON COMMIT DROP"
        )
        for table, name in (
            ("import_vote", "votes.csv"),
            ("import_history", "vote_history.csv"),
        ):
            with cursor.copy(
                f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy:
                stream(copy, name)
        cursor.execute(
            "SELECT expert FROM import_vote UNION SELECT expert FROM import_history"
        )
        experts = [row[0] for row in cursor.fetchall()]
    expert_ids = {name: expert(name).pk for name in experts}
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE import_clip (name text PRIMARY KEY, id bigint) "
            "ON COMMIT DROP"
        )
        cursor.execute(
            "CREATE TEMP TABLE import_expert (name text PRIMARY KEY, id bigint) "
            "ON COMMIT DROP"
        )
        with cursor.copy("COPY import_clip (name, id) FROM STDIN") as copy:
            for name, clip in clip_of.items():
                copy.write_row((name, clip.pk))
        with cursor.copy("COPY import_expert (name, id) FROM STDIN") as copy:
            for name, pk in expert_ids.items():
                copy.write_row((name, pk))
        for table in ("import_vote", "import_history"):
            cursor.execute(
                f"SELECT count(*) FROM {table} v LEFT JOIN import_clip c "
                "ON c.name = v.clip WHERE c.id IS NULL"
            )
            if cursor.fetchone()[0]:
                raise BundleError(
                    f"{'votes.csv' if table == 'import_vote' else 'vote_history.csv'}"
                    " names clips that clips.jsonl does not list."
                )
        joins = (
            "FROM import_vote v JOIN import_clip c ON c.name = v.clip "
            "JOIN import_expert e ON e.name = v.expert"
        )
        columns = "(expert_id, clip_id, grade, created_at, updated_at, seconds_spent)"
        select = (
            "SELECT e.id, c.id, v.grade, v.created_at, "
            "COALESCE(v.updated_at, v.created_at), COALESCE(v.seconds_spent, 0) "
        )
        n_votes = 0
        for model, repeat in ((Vote, 0), (RepeatVote, 1)):
            cursor.execute(
                f"INSERT INTO {model._meta.db_table} {columns} {select} {joins} "
                f"WHERE v.is_repeat = {repeat}"
            )
            n_votes += cursor.rowcount
        cursor.execute(
            f"INSERT INTO {VoteHistory._meta.db_table} (vote_id, repeat_vote_id, "
            "expert_id, clip_id, action, grade, previous_grade, is_repeat, at) "
            "SELECT pv.id, rv.id, e.id, c.id, h.action, h.grade, "
            "COALESCE(h.previous_grade, ''), h.is_repeat = 1, h.at "
            "FROM import_history h JOIN import_clip c ON c.name = h.clip "
            "JOIN import_expert e ON e.name = h.expert "
            f"LEFT JOIN {Vote._meta.db_table} pv ON h.is_repeat = 0 "
            "AND pv.clip_id = c.id AND pv.expert_id = e.id "
            f"LEFT JOIN {RepeatVote._meta.db_table} rv ON h.is_repeat = 1 "
            "AND rv.clip_id = c.id AND rv.expert_id = e.id "
            "ORDER BY h.at"
        )
    return n_votes
