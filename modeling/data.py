"""Dataset manifests on disk, held in memory as one uint8 tensor.

Manifest format (written by the platform export and by ``modeling.synthetic``)::

    <dir>/dataset.json    {"format": "spermgrade-manifest", "version": 1, ...}
    <dir>/manifest.jsonl  one JSON object per clip: clip_id, patient_id,
                          votes [nA..nE], speed, kinematics {...}, array, synthetic
    <dir>/clips/<clip_id>.npy   uint8 (T, H, W, 3)

Every clip must have the same (T, H, W) so the set stacks into one (N, T, H, W, C)
tensor (a 615-clip set of 16x150x150x3 is about 660 MB). Frames are sampled,
resized and augmented later, on the device, in batch (see ``modeling.augment``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MANIFEST_FORMAT = "spermgrade-manifest"
MANIFEST_VERSION = 1
N_GRADES = 5
REQUIRED_KEYS = ("clip_id", "patient_id", "array")


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


@dataclass
class ClipSet:
    """The whole dataset in memory.

    videos: uint8 (N, T, H, W, C); votes: float (N, 5) counts (zeros when unlabelled);
    speed_raw: float (N, F) unstandardised speed features named ``speed_names``.
    """

    clip_ids: list[str]
    patient_ids: list[str]
    videos: torch.Tensor
    votes: torch.Tensor
    speed_raw: torch.Tensor
    speed_names: list[str]
    root: Path

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def targets(self) -> torch.Tensor:
        """Normalised vote distributions (N, 5)."""
        return self.votes / self.votes.sum(dim=1, keepdim=True).clamp_min(1e-12)

    @property
    def modes(self) -> np.ndarray:
        """Grade mode per clip (ties to the lower grade), as an int array."""
        return np.argmax(self.votes.numpy(), axis=1)


def manifest_paths(path: str | Path) -> tuple[Path, Path]:
    """(dataset dir, manifest.jsonl) from either the directory or the jsonl file."""
    path = Path(path)
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


def _check_dataset_json(root: Path) -> None:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise ManifestError(f"{meta_path} is missing (it describes the manifest)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{meta_path} is not valid JSON: {exc}") from exc
    if meta.get("format") != MANIFEST_FORMAT:
        raise ManifestError(
            f"{meta_path}: format is {meta.get('format')!r}, "
            f"expected {MANIFEST_FORMAT!r}"
        )
    if meta.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"{meta_path}: version {meta.get('version')!r} is not supported "
            f"(this code reads version {MANIFEST_VERSION})"
        )


def _parse_votes(raw: object, where: str) -> list[int]:
    if not isinstance(raw, list) or len(raw) != N_GRADES:
        raise ManifestError(f"{where}: votes must be a list of 5 counts, got {raw!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        raise ManifestError(f"{where}: votes must be integers, got {raw!r}")
    if any(v < 0 for v in raw):
        raise ManifestError(f"{where}: votes must not be negative, got {raw!r}")
    if sum(raw) == 0:
        raise ManifestError(f"{where}: the clip has no votes (total 0)")
    return list(raw)


def _parse_record(line: str, where: str, root: Path, require_votes: bool) -> ClipRecord:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in row]
    if require_votes and "votes" not in row:
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
    return ClipRecord(
        clip_id=str(row["clip_id"]),
        patient_id=str(row["patient_id"]),
        votes=votes,
        speed=float(speed),
        kinematics=kinematics,
        array=root / row["array"],
        synthetic=bool(row.get("synthetic", False)),
    )


def manifest_read(path: str | Path, *, require_votes: bool = True) -> list[ClipRecord]:
    """Parse and validate manifest.jsonl (not the arrays); errors name the line."""
    root, jsonl = manifest_paths(path)
    _check_dataset_json(root)
    records: list[ClipRecord] = []
    seen: set[str] = set()
    for number, line in enumerate(jsonl.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{jsonl}:{number}"
        record = _parse_record(line, where, root, require_votes)
        if record.clip_id in seen:
            raise ManifestError(f"{where}: clip_id {record.clip_id!r} appears twice")
        seen.add(record.clip_id)
        records.append(record)
    if not records:
        raise ManifestError(f"{jsonl} lists no clips")
    return records


def _speed_row(record: ClipRecord, names: list[str]) -> list[float]:
    row = []
    for name in names:
        value = record.speed if name == "speed" else record.kinematics.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ManifestError(
                f"clip {record.clip_id}: speed feature {name!r} must be a number "
                f"(speed or a numeric kinematics key), got {value!r}"
            )
        row.append(float(value))
    return row


def _load_array(record: ClipRecord) -> np.ndarray:
    if not record.array.is_file():
        raise ManifestError(
            f"clip {record.clip_id}: array file {record.array} is missing"
        )
    try:
        arr = np.load(record.array, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ManifestError(
            f"clip {record.clip_id}: {record.array} is not a readable .npy file: {exc}"
        ) from exc
    if arr.dtype != np.uint8:
        raise ManifestError(
            f"clip {record.clip_id}: {record.array} has dtype {arr.dtype}, "
            "expected uint8"
        )
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ManifestError(
            f"clip {record.clip_id}: {record.array} has shape {arr.shape}, "
            "expected (T, H, W, 3)"
        )
    return arr


def clipset_load(
    path: str | Path,
    *,
    speed_features: list[str] = ("speed",),
    require_votes: bool = True,
    pin_memory: bool | None = None,
) -> ClipSet:
    """Load a manifest and every clip array into one uint8 tensor (N, T, H, W, C).

    ``pin_memory`` defaults to True when CUDA is available (fast host-to-device
    copies).
    """
    root, _ = manifest_paths(path)
    records = manifest_read(path, require_votes=require_votes)
    names = list(speed_features)
    speed = torch.tensor([_speed_row(r, names) for r in records], dtype=torch.float32)
    speed = speed.reshape(len(records), len(names))
    first = _load_array(records[0])
    videos = torch.empty((len(records), *first.shape), dtype=torch.uint8)
    for i, record in enumerate(records):
        arr = first if i == 0 else _load_array(record)
        if arr.shape != first.shape:
            raise ManifestError(
                f"clip {record.clip_id}: shape {arr.shape} differs from "
                f"{first.shape} of clip {records[0].clip_id}; every clip in a "
                "manifest must have the same (T, H, W, C)"
            )
        videos[i].numpy()[...] = arr  # copies straight from the memory map
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    if pin_memory:
        videos = videos.pin_memory()
    votes = torch.tensor(
        [r.votes or [0] * N_GRADES for r in records], dtype=torch.float32
    )
    return ClipSet(
        clip_ids=[r.clip_id for r in records],
        patient_ids=[r.patient_id for r in records],
        videos=videos,
        votes=votes,
        speed_raw=speed,
        speed_names=names,
        root=root,
    )


@dataclass
class SpeedScaler:
    """Standardisation of speed features with statistics of the training fold."""

    names: list[str]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, speed_raw: torch.Tensor, names: list[str]) -> SpeedScaler:
        mean = speed_raw.mean(dim=0)
        std = speed_raw.std(dim=0, unbiased=False)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        return cls(names=list(names), mean=mean.tolist(), std=std.tolist())

    def transform(self, speed_raw: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=speed_raw.dtype, device=speed_raw.device)
        std = torch.tensor(self.std, dtype=speed_raw.dtype, device=speed_raw.device)
        return (speed_raw - mean) / std

    def to_dict(self) -> dict:
        return {"names": self.names, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict) -> SpeedScaler:
        return cls(names=list(data["names"]), mean=data["mean"], std=data["std"])


def write_manifest(
    out_dir: str | Path,
    *,
    clips: list[np.ndarray],
    patient_ids: list[str],
    votes: list[list[int]],
    speeds: list[float],
    kinematics: list[dict] | None = None,
    clip_ids: list[str] | None = None,
    synthetic: bool = True,
    source: str = "modeling.data.write_manifest",
) -> Path:
    """Write clips and labels in the manifest format; returns the directory."""
    from datetime import UTC, datetime

    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    clip_ids = clip_ids or [f"c{i:05d}" for i in range(len(clips))]
    kinematics = kinematics or [{} for _ in clips]
    with (out / "manifest.jsonl").open("w") as fh:
        for cid, arr, pid, v, s, kin in zip(
            clip_ids, clips, patient_ids, votes, speeds, kinematics, strict=True
        ):
            np.save(out / "clips" / f"{cid}.npy", np.asarray(arr, dtype=np.uint8))
            row = {
                "clip_id": cid,
                "patient_id": pid,
                "votes": [int(x) for x in v],
                "speed": float(s),
                "kinematics": kin,
                "array": f"clips/{cid}.npy",
                "synthetic": synthetic,
            }
            fh.write(json.dumps(row) + "\n")
    meta = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "n_clips": len(clips),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "synthetic": synthetic,
        "source": source,
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
