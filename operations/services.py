"""Backups with a verified restore.

``backup_create`` writes one folder (``checksums`` describes it): the database
dump first, then MEDIA_ROOT, then the manifest; it is written as
``.partial-<name>`` and renamed when complete, so a folder named
``spermgrade-<time>`` is always a whole backup. Media files are written once
and never changed (complete-or-absent renames), so every file the dumped rows
name is on disk when the media are copied; the backup checks that it holds
each one and names any that were already missing.

``backup_restore`` brings a backup into an empty instance (no table in its
database, nothing in MEDIA_ROOT): the dump's checksum is checked first, the
media are copied into a staging folder and checked as they are copied, then
the database is restored in one transaction and the media moved into place.
A file that fails its checksum stops the restore before anything is written
to the database, naming the file. Afterwards every table's row count is
compared with the count read when the backup was taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader

from operations import checksums, databases
from operations.checksums import FileEntry, Manifest, ManifestError
from registry.storage import code_version

NAME_PATTERN = re.compile(r"^spermgrade-\d{8}T\d{6}Z(-\d+)?$")
PARTIAL = ".partial-"
STAGING = ".restore-staging-"
# Half-written by definition (registry/storage.py renames out of it).
MEDIA_SKIPPED = ("registry/tmp",)


class BackupError(Exception):
    """A backup or restore was refused or failed; the message says why and what
    to do."""


@dataclass
class BackupResult:
    folder: Path
    manifest: Manifest
    missing: list[str] = field(default_factory=list)
    pruned: list[Path] = field(default_factory=list)


@dataclass
class RestoreResult:
    manifest: Manifest
    tables: int
    rows: int
    files: int
    bytes: int
    unapplied_migrations: list[str]


# --- writing a backup -------------------------------------------------------------


@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """One backup at a time into a folder (a scheduled one and a manual one)."""
    with open(out / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"another backup is being written into {out}; wait for it to end"
            ) from None
        yield


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _media_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(absolute path, "/"-relative name) of every regular file under ``root``,
    in a stable order, skipping the half-written and symbolic links."""
    for current, dirs, files in os.walk(root):
        here = Path(current)
        relative_dir = here.relative_to(root).as_posix()
        dirs[:] = sorted(
            d
            for d in dirs
            if (f"{relative_dir}/{d}" if relative_dir != "." else d)
            not in MEDIA_SKIPPED
            and not d.startswith(STAGING)
        )
        for name in sorted(files):
            path = here / name
            if not path.is_symlink():
                yield path, path.relative_to(root).as_posix()


def _media_copy(root: Path, target: Path) -> list[FileEntry]:
    """Copy MEDIA_ROOT into ``target``, hashing as it goes; files that are hard
    links of each other (a snapshot's arrays and the clips') stay links."""
    entries: list[FileEntry] = []
    first_of: dict[tuple[int, int], FileEntry] = {}
    for source, name in _media_files(root):
        path = f"{checksums.MEDIA}/{name}"
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            stat = source.stat()
            inode = (stat.st_dev, stat.st_ino)
            if stat.st_nlink > 1 and inode in first_of:
                first = first_of[inode]
                os.link(target.parent / first.path, destination)
                entries.append(FileEntry(path, first.sha256, first.bytes, first.path))
                continue
            sha, size = checksums.copy_hashed(source, destination)
        except FileNotFoundError:
            continue  # removed meanwhile (a finished run's working folder)
        first_of[inode] = FileEntry(path, sha, size)
        entries.append(first_of[inode])
    return entries


def _missing(facts: databases.DumpFacts, entries: list[FileEntry]) -> list[str]:
    """Files and folders the dumped rows name that the backup does not hold."""
    prefix = f"{checksums.MEDIA}/"
    held = {e.path.removeprefix(prefix) for e in entries}
    folders = {str(folder) for name in held for folder in Path(name).parents}
    missing = [name for name in facts.files if name not in held]
    missing += [name for name in facts.folders if name not in folders]
    return sorted(missing)


def _unique_name(out: Path, now: datetime) -> str:
    base = f"spermgrade-{now:%Y%m%dT%H%M%SZ}"
    name, n = base, 1
    while (out / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def backup_create(
    *, out: Path, keep: int | None = None, now: datetime | None = None
) -> BackupResult:
    """Write a backup of the database and MEDIA_ROOT into a new folder under
    ``out``; with ``keep``, remove all but the newest ``keep`` backups there."""
    out, media = Path(out).resolve(), Path(settings.MEDIA_ROOT).resolve()
    if _inside(out, media) or _inside(media, out):
        raise BackupError(
            f"--out {out} and MEDIA_ROOT {media} must not be inside one another"
        )
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    with _folder_lock(out):
        for stale in out.glob(f"{PARTIAL}*"):  # a backup that was interrupted
            shutil.rmtree(stale, ignore_errors=True)
        name = _unique_name(out, now)
        partial = out / f"{PARTIAL}{name}"
        partial.mkdir()
        try:
            try:
                dump_name, facts = databases.database_dump(folder=partial)
            except databases.DatabaseBackupError as exc:
                raise BackupError(str(exc)) from None
            dump_sha = checksums.file_sha256(partial / dump_name)
            dump_entry = FileEntry(
                dump_name, dump_sha, (partial / dump_name).stat().st_size
            )
            (partial / checksums.MEDIA).mkdir()
            media_entries = (
                _media_copy(media, partial / checksums.MEDIA) if media.is_dir() else []
            )
            missing = _missing(facts, media_entries)
            manifest = Manifest(
                created_at=now.isoformat(),
                code_version=code_version(),
                database={
                    "engine": facts.engine,
                    "file": dump_name,
                    "tables": facts.tables,
                    "migrations": facts.migrations,
                },
                media={
                    "files": len(media_entries),
                    "bytes": sum(e.bytes for e in media_entries if not e.link),
                    "missing_at_backup": missing,
                },
                files=[dump_entry, *media_entries],
            )
            checksums.manifest_write(partial, manifest)
            os.sync()  # on disk before the name says "complete"
            final = out / name
            os.rename(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        pruned = backup_prune(out=out, keep=keep) if keep else []
    return BackupResult(folder=final, manifest=manifest, missing=missing, pruned=pruned)


def backup_prune(*, out: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` complete backups in ``out`` (folders
    named spermgrade-<time> holding a manifest; nothing else is touched)."""
    backups = sorted(
        (
            p
            for p in Path(out).iterdir()
            if p.is_dir()
            and NAME_PATTERN.match(p.name)
            and (p / checksums.MANIFEST).is_file()
        ),
        key=lambda p: p.name,
        reverse=True,
    )
    removed = backups[keep:]
    for folder in removed:
        shutil.rmtree(folder)
    return removed


# --- checking and restoring ---------------------------------------------------------


def backup_verify(*, backup: Path) -> Manifest:
    """Check every file of ``backup`` against its manifest; BackupError naming
    the files that fail."""
    try:
        return checksums.manifest_verify(Path(backup))
    except ManifestError as exc:
        raise BackupError(str(exc)) from None


def _known_migrations() -> set[tuple[str, str]]:
    return set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


def _restore_refusals(manifest: Manifest, media: Path) -> None:
    kind, here = manifest.database.get("engine"), databases.engine()
    if kind != here:
        raise BackupError(
            f"This backup holds a {kind} database and this instance uses {here}; "
            "restore it into an instance of the same kind (export_dataset and "
            "import_dataset move the data between kinds)."
        )
    known = _known_migrations()
    unknown = [
        f"{a}.{n}" for a, n in manifest.database["migrations"] if (a, n) not in known
    ]
    if unknown:
        raise BackupError(
            f"This backup was made by newer code ({manifest.code_version}): its "
            f"migrations {', '.join(unknown[:3])} are unknown here. Restore it "
            "with that code version or a later one."
        )
    try:
        tables = databases.database_tables()
    except DatabaseError as exc:
        raise BackupError(
            f"The database cannot be reached ({type(exc).__name__}: {exc}); create "
            "the empty database first and check DATABASE_URL."
        ) from None
    if tables:
        raise BackupError(
            f"The database is not empty ({len(tables)} tables, e.g. "
            f"{sorted(tables)[0]}); a restore goes only into an empty one. Create "
            "a new database (or remove this one) and restore before running "
            "migrate or starting the web service."
        )
    if media.exists() and any(media.iterdir()):
        raise BackupError(
            f"MEDIA_ROOT ({media}) is not empty; a restore goes only into an "
            "empty media folder."
        )


def _media_restore(backup: Path, manifest: Manifest, staging: Path) -> int:
    """Copy the backup's media into ``staging``, each file checked as it is
    copied; the number of bytes copied."""
    prefix = f"{checksums.MEDIA}/"
    problems, copied = [], 0
    for entry in manifest.files:
        if not entry.path.startswith(prefix):
            continue
        target = staging / entry.path.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.link:
            os.link(staging / entry.link.removeprefix(prefix), target)
            continue
        source = backup / entry.path
        if not source.is_file():
            problems.append(f"{entry.path}: missing from the backup")
            continue
        sha, size = checksums.copy_hashed(source, target)
        if (sha, size) != (entry.sha256, entry.bytes):
            problems.append(checksums.entry_problem(backup, entry) or entry.path)
        copied += size
    if problems:
        raise BackupError(checksums.problems_message(backup, problems))
    return copied


def backup_restore(*, backup: Path) -> RestoreResult:
    """Restore ``backup`` into this instance's empty database and MEDIA_ROOT."""
    backup = Path(backup).resolve()
    media = Path(settings.MEDIA_ROOT)
    try:
        manifest = checksums.manifest_read(backup)
    except ManifestError as exc:
        raise BackupError(str(exc)) from None
    _restore_refusals(manifest, media)
    dump = next(f for f in manifest.files if f.path == manifest.database["file"])
    if problem := checksums.entry_problem(backup, dump):
        raise BackupError(checksums.problems_message(backup, [problem]))
    media.mkdir(parents=True, exist_ok=True)
    staging = media / f"{STAGING}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        copied = _media_restore(backup, manifest, staging)
        try:
            databases.database_restore(dump=backup / dump.path, kind=databases.engine())
        except databases.DatabaseBackupError as exc:
            raise BackupError(f"{exc}. Nothing was restored.") from None
        for entry in sorted(staging.iterdir()):
            os.rename(entry, media / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    os.sync()
    counts = databases.table_counts()
    expected = manifest.database["tables"]
    differ = [
        f"{t}: {counts.get(t)} rows, {n} at backup"
        for t, n in sorted(expected.items())
        if counts.get(t) != n
    ]
    if differ:
        raise BackupError(
            "The restored database differs from the backup: " + "; ".join(differ[:5])
        )
    connection.close()
    loader = MigrationLoader(connection)
    unapplied = sorted(
        f"{a}.{n}"
        for a, n in loader.disk_migrations
        if (a, n) not in loader.applied_migrations
    )
    return RestoreResult(
        manifest=manifest,
        tables=len(expected),
        rows=sum(expected.values()),
        files=manifest.media["files"],
        bytes=copied,
        unapplied_migrations=unapplied,
    )
