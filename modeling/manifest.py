"""The dataset manifest: the only reader and writer of the format (pure Python).

A dataset is a folder::

    <dir>/dataset.json          {"format": "spermgrade-manifest", "version": 1,
                                 "manifest_sha256": "...", "n_clips": N, ...}
    <dir>/manifest.jsonl        one JSON object per clip (the row schema below)
    <dir>/clips/<clip_id>.npy   uint8 (T, H, W, 3) frames

Row schema (``manifest.jsonl``, one object a line, keys sorted when written):

    clip_id        str, unique in the manifest                       required
    patient_id     str, a pseudonym; cross-validation groups by it   required
    array          str, path of the .npy relative to <dir>           required
    votes          [nA, nB, nC, nD, nE] non-negative integer counts in grade order
                   (``modeling.grades``), not all zero; required to train,
                   absent or null for clips to predict only
    speed          number (px/s or µm/s), default 0
    kinematics     object of WHO kinematics (vcl, vsl, vap, lin, str, wob, alh,
                   bcf, motility_class, unit, ...), default {}
    synthetic      bool, default false
    array_sha256   hex SHA-256 of the .npy file (written by ``manifest_write``)
    any other key  kept in ``ClipRecord.extra`` (e.g. the synthetic ground truth
                   ``latent_quality`` and ``shape_defect``)

``manifest_sha256`` is the SHA-256 of ``manifest.jsonl`` as written: rows are
canonical JSON and carry their array's hash, so the same clips with the same votes
give the same hash, and any changed vote or frame gives another. Checkpoints record
it as the identity of the data they were trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from modeling.grades import N_GRADES

MANIFEST_FORMAT = "spermgrade-manifest"
MANIFEST_VERSION = 1
REQUIRED_KEYS = ("clip_id", "patient_id", "array")
_KNOWN_KEYS = {
    "clip_id",
    "patient_id",
    "array",
    "votes",
    "speed",
    "kinematics",
    "synthetic",
    "array_sha256",
}


class ManifestError(ValueError):
    """The dataset manifest is malformed; the message names the file and line."""


@dataclass
class ClipRecord:
    clip_id: str
    patient_id: str
    votes: list[int] | None
    speed: float
    kinematics: dict
    array: Path
    synthetic: bool
    array_sha256: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Manifest:
    """A parsed manifest: its rows, ``dataset.json`` and its identity."""

    root: Path
    records: list[ClipRecord]
    meta: dict
    sha256: str


def manifest_paths(path: str | Path) -> tuple[Path, Path]:
    """(dataset dir, manifest.jsonl) from either the directory or the jsonl file."""
    path = Path(path)
    if path.suffix == ".zip" and path.is_file():
        path = manifest_paths_from_zip(path)
    if path.is_dir():
        root, jsonl = path, path / "manifest.jsonl"
    else:
        root, jsonl = path.parent, path
    if not jsonl.is_file():
        raise ManifestError(
            f"no manifest at {jsonl}; pass a dataset directory holding "
            "manifest.jsonl (e.g. one written by `python -m modeling make-synthetic`)"
        )
    return root, jsonl


def _dataset_meta(root: Path) -> dict:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise ManifestError(f"{meta_path} is missing (it describes the manifest)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != MANIFEST_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise ManifestError(
            f"{meta_path}: format is {found!r}, expected {MANIFEST_FORMAT!r}"
        )
    if meta.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"{meta_path}: version {meta.get('version')!r} is not supported "
            f"(this code reads version {MANIFEST_VERSION})"
        )
    return meta


def _parse_votes(raw: object, where: str) -> list[int]:
    if not isinstance(raw, list) or len(raw) != N_GRADES:
        raise ManifestError(
            f"{where}: votes must be a list of {N_GRADES} counts, got {raw!r}"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        raise ManifestError(f"{where}: votes must be integers, got {raw!r}")
    if any(v < 0 for v in raw):
        raise ManifestError(f"{where}: votes must not be negative, got {raw!r}")
    if sum(raw) == 0:
        raise ManifestError(f"{where}: the clip has no votes (total 0)")
    return list(raw)


def _parse_row(row: object, where: str, root: Path, require_votes: bool) -> ClipRecord:
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in row]
    if require_votes and row.get("votes") is None:
        missing.append("votes")
    if missing:
        raise ManifestError(f"{where}: missing key(s) {', '.join(missing)}")
    votes = None
    if row.get("votes") is not None:
        votes = _parse_votes(row["votes"], where)
    speed = row.get("speed", 0.0)
    if not isinstance(speed, int | float) or isinstance(speed, bool):
        raise ManifestError(f"{where}: speed must be a number, got {speed!r}")
    kinematics = row.get("kinematics") or {}
    if not isinstance(kinematics, dict):
        raise ManifestError(f"{where}: kinematics must be an object")
    array = row["array"]
    if not isinstance(array, str) or not array or Path(array).is_absolute():
        raise ManifestError(
            f"{where}: array must be a path relative to the dataset folder, "
            f"got {array!r}"
        )
    return ClipRecord(
        clip_id=str(row["clip_id"]),
        patient_id=str(row["patient_id"]),
        votes=votes,
        speed=float(speed),
        kinematics=kinematics,
        array=root / array,
        synthetic=bool(row.get("synthetic", False)),
        array_sha256=row.get("array_sha256"),
        extra={k: v for k, v in row.items() if k not in _KNOWN_KEYS},
    )


def manifest_load(path: str | Path, *, require_votes: bool = True) -> Manifest:
    """Parse and validate a manifest (not the arrays); errors name the line."""
    root, jsonl = manifest_paths(path)
    meta = _dataset_meta(root)
    data = jsonl.read_bytes()
    records: list[ClipRecord] = []
    seen: set[str] = set()
    for number, line in enumerate(data.decode().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{jsonl}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: not valid JSON: {exc}") from exc
        record = _parse_row(row, where, root, require_votes)
        if record.clip_id in seen:
            raise ManifestError(f"{where}: clip_id {record.clip_id!r} appears twice")
        seen.add(record.clip_id)
        records.append(record)
    if not records:
        raise ManifestError(f"{jsonl} lists no clips")
    return Manifest(
        root=root, records=records, meta=meta, sha256=hashlib.sha256(data).hexdigest()
    )


def manifest_read(path: str | Path, *, require_votes: bool = True) -> list[ClipRecord]:
    """The manifest's rows (see ``manifest_load``)."""
    return manifest_load(path, require_votes=require_votes).records


def manifest_sha256(path: str | Path) -> str:
    """The dataset's identity: the SHA-256 of its ``manifest.jsonl``."""
    _, jsonl = manifest_paths(path)
    return hashlib.sha256(jsonl.read_bytes()).hexdigest()


def manifest_line(row: dict, *, where: str = "row") -> bytes:
    """One row as the canonical line ``manifest_write`` writes (validated, keys
    sorted); the caller supplies ``array_sha256`` (e.g. a writer streaming the
    arrays into a zip)."""
    _parse_row(row, where, Path("."), False)
    return (json.dumps(row, sort_keys=True) + "\n").encode()


def dataset_meta(*, n_clips: int, manifest_sha: str, meta: dict | None = None) -> dict:
    """``dataset.json`` for a manifest of ``n_clips`` rows whose jsonl hashes to
    ``manifest_sha``."""
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "n_clips": n_clips,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(meta or {}),
        "manifest_sha256": manifest_sha,
    }


def manifest_paths_from_zip(path: Path) -> Path:
    """A zipped dataset (e.g. a SpermGrade export) extracted once beside it, into
    ``<name>.zip.d/``; returns that folder."""
    import zipfile

    target = path.with_name(path.name + ".d")
    if not (target / "manifest.jsonl").is_file():
        try:
            with zipfile.ZipFile(path) as bundle:
                bundle.extractall(target)
        except zipfile.BadZipFile as exc:
            raise ManifestError(f"{path} is not a readable zip file: {exc}") from exc
    return target


def _npy_bytes(frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(frames), allow_pickle=False)
    return buffer.getvalue()


def manifest_write(
    out_dir: str | Path,
    *,
    rows: Iterable[dict],
    meta: dict | None = None,
    require_votes: bool = False,
) -> Path:
    """Write a dataset folder from ``rows``; returns the folder.

    Each row follows the schema above. A row with ``frames`` (a uint8 (T, H, W, 3)
    array) has it saved as ``clips/<clip_id>.npy``; otherwise its ``array`` must
    name an existing file in the folder (e.g. hard-linked there by the caller).
    Rows are validated as they would be read, and ``array_sha256`` is filled in.
    ``meta`` adds keys to ``dataset.json`` (e.g. ``source``, ``synthetic``).
    """
    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    jsonl = out / "manifest.jsonl"
    digest = hashlib.sha256()
    n_clips = 0
    seen: set[str] = set()
    with jsonl.open("wb") as fh:
        for number, source in enumerate(rows, start=1):
            row = dict(source)
            frames = row.pop("frames", None)
            where = f"row {number} for {jsonl}"
            if frames is not None:
                frames = np.asarray(frames)
                if frames.dtype != np.uint8 or frames.ndim != 4:
                    raise ManifestError(
                        f"{where}: frames must be uint8 (T, H, W, 3), got "
                        f"{frames.dtype} {frames.shape}"
                    )
                row["array"] = f"clips/{row.get('clip_id')}.npy"
                data = _npy_bytes(frames)
                (out / row["array"]).write_bytes(data)
            record = _parse_row(row, where, out, require_votes)
            if record.clip_id in seen:
                raise ManifestError(f"{where}: clip_id {record.clip_id!r} twice")
            seen.add(record.clip_id)
            if frames is None:
                if not record.array.is_file():
                    raise ManifestError(f"{where}: {record.array} does not exist")
                data = record.array.read_bytes()
            row["array_sha256"] = hashlib.sha256(data).hexdigest()
            line = (json.dumps(row, sort_keys=True) + "\n").encode()
            fh.write(line)
            digest.update(line)
            n_clips += 1
    if n_clips == 0:
        raise ManifestError(f"{jsonl}: no rows to write")
    dataset = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "n_clips": n_clips,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(meta or {}),
        "manifest_sha256": digest.hexdigest(),
    }
    (out / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n")
    return out
