"""Results of training: a fold's result and its files, cross-validation summaries
(mean and std over folds, the mean-distribution baseline) and out-of-fold
predictions. Pure functions over arrays and files; ``modeling.training`` writes
them, ``fold_result_load`` reads a finished fold back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modeling.cv import Fold
from modeling.data import ClipSet
from modeling.grades import GRADES
from modeling.metrics import metrics_all


@dataclass
class FoldResult:
    index: int
    test_idx: np.ndarray
    test_probs: np.ndarray
    metrics: dict
    best_epoch: int
    # test predictions under the second checkpoint rule (cv.also_select_by)
    test_probs_alt: np.ndarray | None = None


def json_write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def mean_std(rows: list[dict]) -> tuple[dict, dict]:
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    # the sample standard deviation over folds (ddof 1); 0 for a single fold
    ddof = 1 if len(rows) > 1 else 0
    std = {k: float(np.std([r[k] for r in rows], ddof=ddof)) for k in keys}
    return mean, std


def baseline_mean_distribution(clips: ClipSet, folds: list[Fold]) -> list[dict]:
    """Per fold: metrics of predicting the training-set mean distribution."""
    targets = clips.targets.numpy().astype(np.float64)
    rows = []
    for fold in folds:
        mean = targets[np.concatenate([fold.train, fold.val])].mean(0)
        pred = np.broadcast_to(mean, (len(fold.test), 5))
        rows.append(metrics_all(pred, targets[fold.test]))
    return rows


def oof_write(path: Path, clips: ClipSet, results: list[FoldResult]) -> np.ndarray:
    """Out-of-fold predictions, one JSON line per clip; returns the (N, 5) array.

    Per-frame predictions (F per clip, ``FoldResult.test_probs`` (n, F, 5)) are
    written as ``pred_frames`` beside ``pred``, their mean (the clip's served
    distribution), and returned as (N, F, 5)."""
    oof = np.full((len(clips), *results[0].test_probs.shape[1:]), np.nan)
    fold_of = np.full(len(clips), -1)
    for r in results:
        oof[r.test_idx] = r.test_probs
        fold_of[r.test_idx] = r.index
    targets = clips.targets.numpy()
    clip_pred = oof.mean(axis=1) if oof.ndim == 3 else oof
    with path.open("w") as fh:
        for i, cid in enumerate(clips.clip_ids):
            row = {
                "clip_id": cid,
                "patient_id": clips.patient_ids[i],
                "fold": int(fold_of[i]),
                "target": [round(float(x), 6) for x in targets[i]],
                "pred": [round(float(x), 6) for x in clip_pred[i]],
                "pred_mode": GRADES[int(np.argmax(clip_pred[i]))],
            }
            if oof.ndim == 3:
                row["pred_frames"] = oof[i].round(6).tolist()
            fh.write(json.dumps(row) + "\n")
    return oof


def fold_dirname(index: int) -> str:
    return f"fold_{index}" if index >= 0 else "final"


def fold_result_load(out_dir: str | Path, index: int, clips: ClipSet) -> FoldResult:
    """A finished fold's result as ``run_fold`` returned it, read from its files."""
    fold_dir = Path(out_dir) / fold_dirname(index)
    metrics = json.loads((fold_dir / "metrics.json").read_text())
    metrics.pop("history", None)
    tested = json.loads((fold_dir / "test_predictions.json").read_text())
    position = {cid: i for i, cid in enumerate(clips.clip_ids)}
    unknown = [c for c in tested["clip_ids"] if c not in position]
    if unknown:
        raise ValueError(
            f"{fold_dir} holds predictions for clips not in this dataset "
            f"({unknown[:3]}...); it belongs to another dataset"
        )
    test_idx = np.array([position[c] for c in tested["clip_ids"]], dtype=int)
    probs = _probs_read(tested["probs"], len(test_idx))
    alt = tested.get("probs_alt")
    if alt is not None:
        alt = _probs_read(alt, len(test_idx))
    return FoldResult(index, test_idx, probs, metrics, int(tested["best_epoch"]), alt)


def _probs_read(rows: list, n: int) -> np.ndarray:
    """(n, 5) clip predictions, or (n, F, 5) per-frame ones, as written."""
    probs = np.array(rows, dtype=np.float64)
    return probs if probs.ndim == 3 else probs.reshape(n, 5)
