"""A backup folder's manifest: every file with its SHA-256 and size.

    spermgrade-20270101T020000Z/
        manifest.json       what the backup holds (format, database, media, files)
        SHA256SUMS          the same checksums for ``sha256sum -c`` (no Python needed)
        database.pgdump     pg_dump custom format (or database.sqlite3)
        media/...           MEDIA_ROOT as it was, hard links kept

Pure Python, no Django: the manifest is read and checked before anything is
restored, and a path in it can never point outside the backup.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

FORMAT = "spermgrade-backup/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
MEDIA = "media"
CHUNK = 1 << 20


class ManifestError(Exception):
    """The backup cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the backup folder, "/"-separated
    sha256: str
    bytes: int
    link: str = ""  # an earlier entry that is the same file (a hard link)


@dataclass
class Manifest:
    created_at: str
    code_version: str
    database: dict
    media: dict
    files: list[FileEntry] = field(default_factory=list)
    format: str = FORMAT

    def to_json(self) -> str:
        data = asdict(self)
        data["files"] = [
            {k: v for k, v in asdict(f).items() if v != ""} for f in self.files
        ]
        return json.dumps(data, indent=1, sort_keys=True) + "\n"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashed(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to a new file ``target``; the SHA-256 and size of the
    bytes written (hashed as they are copied, so a file that changes meanwhile is
    recorded as it was copied)."""
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as src, open(target, "xb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    shutil.copystat(source, target)
    return digest.hexdigest(), size


def safe_relative(path: str) -> PurePosixPath:
    """``path`` as a relative path that stays inside its folder, or an error."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise ManifestError(f"{MANIFEST} names an unsafe path {path!r}")
    return pure


def manifest_write(folder: Path, manifest: Manifest) -> None:
    (folder / MANIFEST).write_text(manifest.to_json())
    lines = [f"{f.sha256}  {f.path}\n" for f in manifest.files]
    (folder / SUMS).write_text("".join(lines))


def manifest_read(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ManifestError(f"{folder} is not a folder (give a backup's folder)")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(
            f"{MANIFEST} is missing: {folder} is not a complete backup"
        ) from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{MANIFEST} cannot be read ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(
            f"{MANIFEST} is not a SpermGrade backup manifest ({FORMAT})"
        )
    try:
        files = [FileEntry(**entry) for entry in data["files"]]
        manifest = Manifest(
            created_at=data["created_at"],
            code_version=data["code_version"],
            database=dict(data["database"]),
            media=dict(data["media"]),
            files=files,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{MANIFEST} is incomplete ({exc!r})") from None
    seen: set[str] = set()
    for entry in files:
        safe_relative(entry.path)
        if entry.path in seen or entry.path in {MANIFEST, SUMS}:
            raise ManifestError(f"{MANIFEST} lists {entry.path!r} twice")
        if entry.link and entry.link not in seen:
            raise ManifestError(
                f"{MANIFEST}: {entry.path!r} links to {entry.link!r}, not listed before"
            )
        seen.add(entry.path)
    database = manifest.database
    if not {"engine", "file", "tables", "migrations"} <= set(database) or not any(
        f.path == database["file"] for f in files
    ):
        raise ManifestError(f"{MANIFEST} does not describe the database dump")
    return manifest


def entry_problem(folder: Path, entry: FileEntry) -> str:
    """What is wrong with one file of the backup ("" when it matches)."""
    path = folder / entry.path
    if not path.is_file() or path.is_symlink():
        return f"{entry.path}: missing from the backup"
    size = path.stat().st_size
    if size != entry.bytes:
        return f"{entry.path}: {size} bytes, the manifest says {entry.bytes}"
    found = file_sha256(path)
    if found != entry.sha256:
        return (
            f"{entry.path}: checksum differs (manifest {entry.sha256[:12]}..., "
            f"file {found[:12]}...)"
        )
    return ""


def problems_message(folder: Path, problems: list[str]) -> str:
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return (
        f"The backup {folder} fails its checksums, so nothing was restored: "
        f"{shown}{more}. Use another copy of this backup (e.g. the off-site one)."
    )


def manifest_verify(folder: Path) -> Manifest:
    """Read the manifest and check every file it lists; ManifestError naming
    the files that fail."""
    manifest = manifest_read(folder)
    problems = [p for entry in manifest.files if (p := entry_problem(folder, entry))]
    if problems:
        raise ManifestError(problems_message(folder, problems))
    return manifest
