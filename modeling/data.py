"""Datasets in memory: a manifest (``modeling.manifest``) as one uint8 tensor.

Every clip must have the same (T, H, W) so the set stacks into one (N, T, H, W, C)
tensor (a 615-clip set of 16x150x150x3 is about 660 MB). Frames are sampled,
resized and augmented later, on the device, in batch (see ``modeling.augment``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from modeling.grades import N_GRADES
from modeling.manifest import ClipRecord, ManifestError, manifest_load


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
    manifest_sha256: str = ""
    records: list[ClipRecord] = field(default_factory=list)

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
    manifest = manifest_load(path, require_votes=require_votes)
    records = manifest.records
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
        root=manifest.root,
        manifest_sha256=manifest.sha256,
        records=records,
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
