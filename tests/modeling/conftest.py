"""Tiny datasets for modeling tests (written to tmp dirs, never into the repo)."""

from pathlib import Path

import numpy as np
import pytest

from modeling.manifest import manifest_write

# `python -m modeling train` overrides for a seconds-long CPU run on a tiny set.
TINY_TRAIN_SETS = [
    arg
    for value in (
        "model.name=clinic",
        "model.kwargs={tiny: true, weights: random, input_size: 16}",
        "data.n_frames=4",
        "data.size=32",
        "optim.epochs=1",
        "optim.batch_size=2",
        "cv.k=2",
        "runtime.progress=false",
    )
    for arg in ("--set", value)
]


def tiny_manifest(
    out_dir: Path,
    *,
    n_clips: int = 2,
    n_patients: int | None = None,
    n_frames: int = 4,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """A manifest whose grade follows a bright blob's brightness and the speed."""
    rng = np.random.default_rng(seed)
    n_patients = n_patients or n_clips
    clips, votes, speeds, kinematics = [], [], [], []
    for i in range(n_clips):
        grade = i % 5
        frames = rng.integers(0, 40, (n_frames, size, size, 3), dtype=np.uint8)
        frames[:, size // 4 : size // 2, size // 4 : size // 2] = 240 - 40 * grade
        counts = np.zeros(5, dtype=int)
        counts[grade] = 6
        counts[min(grade + 1, 4)] += 2
        clips.append(frames)
        votes.append(counts.tolist())
        speeds.append(50.0 - 8 * grade + rng.normal())
        kinematics.append({"vcl": 60.0 - 5 * grade, "motility_class": "progressive"})
    patients = [f"P{i % n_patients:02d}" for i in range(n_clips)]
    rows = [
        {
            "clip_id": f"c{i:05d}",
            "patient_id": patient,
            "votes": [int(v) for v in vote],
            "speed": float(speed),
            "kinematics": kin,
            "frames": frames,
            "synthetic": True,
        }
        for i, (frames, patient, vote, speed, kin) in enumerate(
            zip(clips, patients, votes, speeds, kinematics, strict=True)
        )
    ]
    return manifest_write(out_dir, rows=rows, meta={"synthetic": True})


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    return tiny_manifest(tmp_path / "data")


def tiny_checkpoint(out: Path, data: Path, *, name: str = "clinic", config=None):
    """An untrained tiny ``name`` model saved as a checkpoint of ``data`` (the
    clips' manifest hash and speed scaler), as training would write it."""
    from modeling import checkpoint as ckpt
    from modeling.config import config_from_dict
    from modeling.data import SpeedScaler, clipset_load
    from modeling.models import TINY_KWARGS

    clips = clipset_load(data)
    kwargs = dict(TINY_KWARGS[name])
    cfg = config_from_dict(
        {"model": {"name": name, "kwargs": kwargs}, **(config or {})}
    )
    return ckpt.checkpoint_save(
        out,
        model=ckpt.model_create(name, **kwargs, n_speed=1),
        cfg=cfg,
        n_speed=1,
        scaler=SpeedScaler.fit(clips.speed_raw, clips.speed_names),
        fold=0,
        epoch=1,
        metrics={},
        dataset_sha256=clips.manifest_sha256,
    )


def fold0_served_and_oof(out: Path, data: Path, pred_dir: Path):
    """(predict's result, {clip_id: served pred}, fold 0's out-of-fold rows):
    a CV run's fold-0 checkpoint served on ``data`` beside what the run wrote."""
    import json

    from modeling import predict

    oof = [
        json.loads(x) for x in (out / "oof_predictions.jsonl").read_text().splitlines()
    ]
    result = predict.predict(
        checkpoint=out / "fold_0" / "checkpoint", data=data, out=pred_dir, device="cpu"
    )
    served = {}
    for line in (pred_dir / "predictions.jsonl").read_text().splitlines():
        row = json.loads(line)
        served[row["clip_id"]] = row["pred"]
    return result, served, [r for r in oof if r["fold"] == 0]
