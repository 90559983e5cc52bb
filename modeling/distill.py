"""The clinic profile: a small model distilled from a trained TimeSformer.

Per fold of a finished TimeSformer cross-validation run (``run_cv`` output), the
fold's teacher predicts every clip; the student (``clinic`` by default, see
``modeling.models.video_cnn.clinic``) trains on that fold's training clips with
soft targets ``(1 - w) * panel + w * teacher`` and is selected and tested against
the panel alone, on the teacher's own folds, so no test clip leaks into training.
The teacher's predictions on its training clips are in-sample (standard
knowledge distillation); its test-fold predictions are never used for training.
The student's inputs go through ``training.fold_data`` as in ``run_cv``, so a
negative control in its config (``data.control``) is applied, not only recorded;
the teacher sees the inputs of its own run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from modeling import checkpoint as ckpt
from modeling import training
from modeling.config import Config, config_dump
from modeling.cv import Fold
from modeling.data import ClipSet, SpeedScaler
from modeling.metrics import metrics_all
from modeling.runtime import device_resolve


def soft_targets(
    *, panel: torch.Tensor, teacher: torch.Tensor, teacher_weight: float
) -> torch.Tensor:
    """Mix of the panel distribution and the teacher's prediction, rows sum to 1."""
    if panel.shape != teacher.shape or panel.shape[-1] != 5:
        raise ValueError(
            f"panel {tuple(panel.shape)} and teacher {tuple(teacher.shape)} must "
            "both be (N, 5)."
        )
    if not 0.0 <= teacher_weight <= 1.0:
        raise ValueError(f"teacher_weight must be in [0, 1], got {teacher_weight}.")
    return (1 - teacher_weight) * panel + teacher_weight * teacher.to(panel)


def teacher_predict(
    *, checkpoint: str | Path, clips: ClipSet, fold: Fold, device: torch.device
) -> np.ndarray:
    """The teacher checkpoint's predicted distributions for every clip (N, 5),
    on the inputs it had in its own run (``training.fold_data``: its fold's
    control, if it ran under one)."""
    model, _, cfg, scaler = ckpt.checkpoint_load(checkpoint, device=device)
    data = training.fold_data(clips, scaler, cfg, device, fold)
    return training.evaluate(
        model=model,
        data=data,
        idx=np.arange(len(clips)),
        cfg=cfg,
        device=device,
        frames=False,  # soft targets: one distribution per clip
    )


def folds_read(run_dir: str | Path, clips: ClipSet) -> list[Fold]:
    """The teacher run's folds (``folds.json``) as clip indices of ``clips``."""
    raw = json.loads((Path(run_dir) / "folds.json").read_text())
    position = {cid: i for i, cid in enumerate(clips.clip_ids)}
    missing = [c for part in raw.values() for s in part.values() for c in s]
    missing = [c for c in missing if c not in position]
    if missing:
        raise ValueError(
            f"{len(missing)} clips of the teacher's folds are not in the data "
            f"(e.g. {missing[0]!r}); distil on the manifest the teacher used."
        )
    return [
        Fold(
            index=int(name.removeprefix("fold_")),
            **{
                side: np.array(sorted(position[c] for c in ids), dtype=int)
                for side, ids in part.items()
            },
        )
        for name, part in sorted(raw.items())
    ]


def distill_fold(
    *,
    cfg: Config,
    clips: ClipSet,
    fold: Fold,
    teacher_probs: np.ndarray,
    teacher_weight: float,
    device: torch.device,
) -> dict:
    """Train the student on one fold; returns test metrics and the test predictions."""
    torch.manual_seed(cfg.runtime.seed + fold.index)
    scaler = SpeedScaler.fit(clips.speed_raw[fold.train], clips.speed_names)
    # The student's inputs exactly as run_cv's (its control included): one path.
    data = training.fold_data(clips, scaler, cfg, device, fold)
    soft = soft_targets(
        panel=data.targets,
        teacher=torch.as_tensor(teacher_probs, dtype=torch.float32),
        teacher_weight=teacher_weight,
    )
    train_data = dataclasses.replace(data, targets=soft)
    model = training.model_for(cfg, len(clips.speed_names), device)
    # Selected on the panel's validation EMD whatever cfg.cv.selection_metric says.
    select_cfg = dataclasses.replace(
        cfg, cv=dataclasses.replace(cfg.cv, selection_metric="emd")
    )
    best_state, best_epoch, val_metrics, _ = training.train_epochs(
        model=model,
        data=data,
        train_data=train_data,
        fold=fold,
        cfg=select_cfg,
        device=device,
        label=f"distil fold {fold.index}",
    )
    model.load_state_dict(best_state)
    test_probs = training.evaluate(
        model=model, data=data, idx=fold.test, cfg=cfg, device=device
    )
    test = metrics_all(test_probs, data.targets[fold.test].cpu().numpy())
    return {
        "index": fold.index,
        "best_epoch": best_epoch,
        "val_emd": val_metrics["emd"],
        "test": test,
        "test_probs": test_probs,
        "model": model,
    }


def distill_cv(
    *,
    cfg: Config,
    clips: ClipSet,
    teacher_dir: str | Path,
    out_dir: str | Path,
    teacher_weight: float = 0.5,
) -> dict:
    """Distil ``cfg.model`` from every fold of the run in ``teacher_dir``.

    Writes ``distill_metrics.json`` under ``out_dir`` and returns it: the
    student's fold-mean test metrics next to the teacher's, and their EMD ratio.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_dump(cfg, out / "config.yaml")
    device = device_resolve(cfg.runtime.device)
    teacher_dir = Path(teacher_dir)
    start = time.perf_counter()
    results = []
    for fold in folds_read(teacher_dir, clips):
        checkpoint = teacher_dir / f"fold_{fold.index}" / "checkpoint"
        teacher = teacher_predict(
            checkpoint=checkpoint, clips=clips, fold=fold, device=device
        )
        result = distill_fold(
            cfg=cfg,
            clips=clips,
            fold=fold,
            teacher_probs=teacher,
            teacher_weight=teacher_weight,
            device=device,
        )
        ckpt.checkpoint_save(
            out / f"fold_{fold.index}" / "checkpoint",
            model=result.pop("model"),
            cfg=cfg,
            n_speed=len(clips.speed_names),
            scaler=SpeedScaler.fit(clips.speed_raw[fold.train], clips.speed_names),
            fold=fold.index,
            epoch=result["best_epoch"],
            metrics={"test": result["test"], "teacher_weight": teacher_weight},
            dataset_sha256=clips.manifest_sha256,
        )
        result.pop("test_probs")
        results.append(result)
    student_mean, student_std = training.mean_std([r["test"] for r in results])
    teacher_metrics = json.loads((teacher_dir / "metrics.json").read_text())
    teacher_emd = teacher_metrics["mean"]["emd"]
    summary = {
        "student": cfg.model.name,
        "teacher": teacher_metrics.get("model"),
        "teacher_weight": teacher_weight,
        "wall_s": time.perf_counter() - start,
        "folds": results,
        "mean": student_mean,
        "std": student_std,
        "teacher_mean": teacher_metrics["mean"],
        "emd_ratio_to_teacher": student_mean["emd"] / teacher_emd,
    }
    (out / "distill_metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
