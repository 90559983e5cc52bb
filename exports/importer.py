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
import re
import zipfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import OuterRef, Subquery

from annotation.models import (
    Clip,
    ExpertProfile,
    Patient,
    RepeatVote,
    Vote,
    VoteHistory,
)
from annotation.roles import EXPERTS_GROUP
from exports import import_checks as checks
from exports.bundle import FORMAT, VERSION
from exports.import_checks import BundleError
from exports.models import ImportedBundle


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(
            f"{Path(path).name} is not a readable zip file ({exc}); export it again."
        ) from None


def bundle_verify(path: str | Path) -> str:
    """Check the members' names and sizes, the format, the version and every
    checksum; returns the checksums' hash. Nothing is read past its bound."""
    with _open(Path(path)) as bundle:
        names = set(bundle.namelist())
        if "FORMAT.json" not in names or "checksums.sha256" not in names:
            raise BundleError(
                "This zip is not a SpermGrade export (FORMAT.json or "
                "checksums.sha256 is missing)."
            )
        members = checks.members_check(bundle)
        listing_info = members["checksums.sha256"]
        if listing_info.file_size > 128 * len(members) + 1024:
            raise BundleError("checksums.sha256 is longer than its files need.")
        try:
            fmt = json.loads(checks.read_small(bundle, members["FORMAT.json"]))
            listing = checks.read_small(bundle, listing_info)
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise BundleError(f"The bundle is damaged: {exc}") from None
        if not isinstance(fmt, dict) or fmt.get("format") != FORMAT:
            found = fmt.get("format") if isinstance(fmt, dict) else None
            raise BundleError(f"Unknown bundle format {found!r:.60}.")
        if fmt.get("version") != VERSION:
            raise BundleError(
                f"Bundle format version {fmt.get('version')!r:.20}; this SpermGrade "
                f"reads version {VERSION}."
            )
        expected = {}
        try:
            lines = listing.decode().splitlines()
        except UnicodeDecodeError:
            raise BundleError("checksums.sha256 is not text.") from None
        for line in lines:
            digest, _, name = line.partition("  ")
            if not _SHA256.fullmatch(digest) or name in expected:
                raise BundleError(
                    "checksums.sha256 must list '<sha256>  <name>' once per file."
                )
            expected[name] = digest
        names = set(members) - {"checksums.sha256"}
        if set(expected) != names:
            extra = sorted(names - set(expected))[:3]
            missing = sorted(set(expected) - names)[:3]
            raise BundleError(
                f"The bundle's files do not match its checksum list (unlisted: "
                f"{extra}, missing: {missing}); it was altered or truncated."
            )
        for name, digest in expected.items():
            sha = hashlib.sha256()
            try:
                with bundle.open(members[name]) as fh:
                    while block := fh.read(1 << 20):
                        sha.update(block)
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise BundleError(f"{name} is damaged or truncated: {exc}") from None
            if sha.hexdigest() != digest:
                raise BundleError(
                    f"{name} does not match its checksum: the bundle was altered."
                )
        return hashlib.sha256(listing).hexdigest()


_SHA256 = re.compile(r"[0-9a-f]{64}")


BATCH = 5000

try:  # errors raised by raw COPY cursors are psycopg's own, not Django's
    from psycopg import Error as _PsycopgError
except ImportError:  # pragma: no cover - SQLite-only installs
    _PsycopgError = DatabaseError
_ROW_ERRORS = (DatabaseError, _PsycopgError, ValueError, KeyError, TypeError)


def _rows(bundle: zipfile.ZipFile, name: str, check):
    """The checked rows of a CSV member, streamed (line numbers from 2)."""
    try:
        with bundle.open(name) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            for line, row in enumerate(csv.DictReader(text), start=2):
                yield check(row, line)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BundleError(f"{name} is not a UTF-8 CSV file ({exc}).") from None


def _clip_rows(bundle: zipfile.ZipFile):
    """clips.jsonl's rows, streamed and checked; a clip listed twice is refused."""
    seen: set[str] = set()
    with bundle.open("clips.jsonl") as fh:
        for line, raw in enumerate(fh, start=1):
            try:
                row = json.loads(raw, parse_constant=_no_constant)
            except ValueError as exc:
                raise BundleError(
                    f"clips.jsonl line {line}: not JSON ({exc})."
                ) from None
            row = checks.clip_row_check(row, line)
            if row["clip"] in seen:
                raise BundleError(f"clips.jsonl lists {row['clip']} twice.")
            seen.add(row["clip"])
            yield row


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _stored(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> str:
    """Copy a member into the media storage in chunks (never whole in memory)."""
    with bundle.open(info) as fh:
        content = File(fh, name=name)
        content.size = info.file_size
        return default_storage.save(name, content)


class ImportCancelled(Exception):
    """An admin cancelled the import: the transaction rolls back, nothing stays."""


def _no_report(step: str, share: float) -> bool:
    return False


def bundle_import(path: str | Path, *, report=_no_report) -> dict:
    """Import a verified bundle; returns what was created (or that it was there).

    ``report(step, share)`` hears the progress (share 0–1) and returns True to
    stop: the import then rolls back whole and raises ``ImportCancelled``.
    """

    def progress(step: str, share: float) -> None:
        if report(step, share):
            raise ImportCancelled(f"cancelled while {step}; nothing was imported")

    progress("verifying checksums", 0.02)
    fingerprint = bundle_verify(path)
    if ImportedBundle.objects.filter(checksums_sha256=fingerprint).exists():
        return {"already_imported": True, "clips": 0, "votes": 0}
    written: list[str] = []
    try:
        with _open(Path(path)) as bundle, transaction.atomic():
            progress("storing clips", 0.2)
            result = _import(bundle, written, progress)
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


def _import(bundle: zipfile.ZipFile, written: list[str], progress) -> dict:
    User = get_user_model()
    from django.contrib.auth.models import Group

    experts_group, _ = Group.objects.get_or_create(name=EXPERTS_GROUP)
    fmt = json.loads(bundle.read("FORMAT.json"))  # bounded by bundle_verify
    synthetic = fmt.get("synthetic") is True
    members = {info.filename: info for info in bundle.infolist()}
    patients: dict[str, Patient] = {}
    clip_of: dict[str, Clip] = {}
    pending: list[tuple[str, Clip]] = []

    def clips_flush() -> None:
        # Created in batches; PostgreSQL and SQLite both return the new ids.
        Clip.objects.bulk_create([clip for _, clip in pending], batch_size=BATCH)
        clip_of.update(pending)
        pending.clear()
        progress(f"storing clips ({len(clip_of)} so far)", 0.3)

    for row in _clip_rows(bundle):
        code = row["patient"]
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
            kinematics=row["kinematics"],
            is_synthetic=row["synthetic"],
            latent_quality=row.get("latent_quality"),
        )
        array = f"clips/{row['clip']}.npy"
        if array in members:
            checks.array_check(bundle, members[array], row)
            name = _stored(bundle, members[array], f"clips/imported/{row['clip']}.npy")
            written.append(name)
            clip.array_file.name = name
        if row.get("video"):
            if row["video"] not in members:
                raise BundleError(f"clips.jsonl names {row['video']}, not in the zip.")
            name = _stored(
                bundle, members[row["video"]], f"clips/imported/{row['clip']}.mp4"
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
        """The imported account of this pseudonym: new, or one an earlier import
        made; never a local account that happens to have the name."""
        if pseudonym not in expert_of:
            if not checks.EXPERT_NAME.fullmatch(pseudonym):
                raise BundleError(f"{pseudonym[:40]!r} is not an expert pseudonym.")
            user = User.objects.filter(username=pseudonym).first()
            if user is None:
                user = User.objects.create(username=pseudonym)
                user.set_unusable_password()
                user.save(update_fields=["password"])
                user.groups.add(experts_group)
                ExpertProfile.objects.create(
                    user=user,
                    code=pseudonym,
                    is_simulated=synthetic,
                    is_imported=True,
                )
            elif not ExpertProfile.objects.filter(user=user, is_imported=True).exists():
                raise BundleError(
                    f"An account named {pseudonym} exists here and was not made by "
                    "an import: the bundle's votes are never added to it. Rename "
                    "that account to import this bundle."
                )
            expert_of[pseudonym] = user
        return expert_of[pseudonym]

    from django.db import connection

    if connection.vendor == "postgresql":
        # COPY takes the files as they are: every row is checked first (the
        # SQLite path below checks each row as it builds it).
        progress("checking votes", 0.5)
        for name, check in (
            ("votes.csv", checks.vote_row_check),
            ("vote_history.csv", checks.history_row_check),
        ):
            for _ in _rows(bundle, name, check):
                pass
        progress("copying votes", 0.7)
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
        progress(f"storing votes ({n_votes} so far)", 0.6)

    def clip(name: str, listing: str) -> Clip:
        if name not in clip_of:
            raise BundleError(f"{listing} names clips that clips.jsonl does not list.")
        return clip_of[name]

    for v in _rows(bundle, "votes.csv", checks.vote_row_check):
        model = RepeatVote if v["is_repeat"] == "1" else Vote
        row = model(
            clip=clip(v["clip"], "votes.csv"),
            expert=expert(v["expert"]),
            grade=v["grade"],
            created_at=v["created_at"],
            updated_at=v["updated_at"],
            seconds_spent=v["seconds_spent"],
        )
        (repeats if model is RepeatVote else plain).append(row)
        n_votes += 1
        if len(plain) + len(repeats) >= BATCH:
            flush()
    flush()
    history = []
    for h in _rows(bundle, "vote_history.csv", checks.history_row_check):
        history.append(
            VoteHistory(
                expert=expert(h["expert"]),
                clip=clip(h["clip"], "vote_history.csv"),
                action=h["action"],
                grade=h["grade"],
                previous_grade=h["previous_grade"],
                is_repeat=h["is_repeat"] == "1",
                at=h["at"],
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
        # Dropped on commit; an import inside an outer transaction (a test, a
        # second import in one transaction) must not find the last one's.
        cursor.execute(
            "DROP TABLE IF EXISTS import_vote, import_history, import_clip, "
            "import_expert"
        )
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
