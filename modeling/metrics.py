"""Evaluation metrics for predicted grade distributions (pure numpy).

All functions take ``pred`` and ``target`` as arrays of shape (N, 5): probability
distributions over grades A..E (index 0 = A). Vote counts may be passed as
``target``; they are normalised first.

Conventions (chosen to avoid the faults of the reference code):

- The grade mode is the argmax; ties go to the lower grade index (A before B).
- The n-th most-voted grade ranks grades by descending probability with the same
  tie-break (lower index first), so n = 1 is the most voted grade, n = 5 the least.
- Balanced accuracy is the mean recall over the classes present in the truth.
- Macro F1 averages F1 over the classes present in the truth or the prediction.
- EMD is the mean over bins of squared CDF differences (eq. 6 of Nakagawa et al.);
  JSD and CE are in nats.
"""

from __future__ import annotations

import math

import numpy as np

from modeling.grades import GRADES, N_GRADES

EPS = 1e-8
TOP_FRACTIONS = (0.25, 0.50, 0.75)


def _as_distributions(x: np.ndarray, *, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != N_GRADES:
        raise ValueError(
            f"{name}: expected shape (n_clips, {N_GRADES}), got {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: needs at least one clip")
    if (arr < 0).any():
        raise ValueError(f"{name}: probabilities and vote counts must be >= 0")
    totals = arr.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise ValueError(f"{name}: every row needs a positive total")
    return arr / totals


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = _as_distributions(pred, name="pred")
    q = _as_distributions(target, name="target")
    if p.shape != q.shape:
        raise ValueError(f"pred {p.shape} and target {q.shape} must match")
    return p, q


def emd_per_clip(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    p, q = _pair(pred, target)
    return ((np.cumsum(p, 1) - np.cumsum(q, 1)) ** 2).mean(axis=1)


def mse_per_clip(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    p, q = _pair(pred, target)
    return ((p - q) ** 2).mean(axis=1)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * (np.log(np.maximum(p, EPS)) - np.log(np.maximum(q, EPS)))).sum(1)


def jsd_per_clip(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    p, q = _pair(pred, target)
    m = 0.5 * (p + q)
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def ce_per_clip(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    p, q = _pair(pred, target)
    return -(q * np.log(np.maximum(p, EPS))).sum(axis=1)


def hi_per_clip(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Histogram intersection sum_k min(p_k, q_k), in [0, 1] (1 = identical)."""
    p, q = _pair(pred, target)
    return np.minimum(p, q).sum(axis=1)


def grade_mode(dist: np.ndarray) -> np.ndarray:
    """Index of the most probable grade; ties go to the lower index."""
    return np.argmax(_as_distributions(dist, name="dist"), axis=1)


def nth_grade(dist: np.ndarray, n: int) -> np.ndarray:
    """Index of the n-th most probable grade (n = 1 most, n = 5 least).

    Ties are broken by the lower grade index first (a stable sort on -p).
    """
    if not 1 <= n <= N_GRADES:
        raise ValueError(f"n must be in 1..{N_GRADES}, got {n}")
    p = _as_distributions(dist, name="dist")
    order = np.argsort(-p, axis=1, kind="stable")
    return order[:, n - 1]


def accuracy(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(true_labels) == np.asarray(pred_labels)))


def balanced_accuracy(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Mean recall over the classes present in ``true_labels``."""
    t, p = np.asarray(true_labels), np.asarray(pred_labels)
    recalls = [np.mean(p[t == c] == c) for c in np.unique(t)]
    return float(np.mean(recalls))


def macro_f1(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Mean F1 over the classes present in the truth or in the prediction."""
    t, p = np.asarray(true_labels), np.asarray(pred_labels)
    scores = []
    for c in np.union1d(t, p):
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def macro_hi(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over true-mode classes of the mean HI within that class."""
    hi = hi_per_clip(pred, target)
    modes = grade_mode(target)
    return float(np.mean([hi[modes == c].mean() for c in np.unique(modes)]))


def within_one_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Share of clips whose predicted mode is at most one grade from the true one."""
    return float(np.mean(np.abs(grade_mode(pred) - grade_mode(target)) <= 1))


def top_hi_segments(
    pred: np.ndarray, target: np.ndarray, *, fractions: tuple = TOP_FRACTIONS
) -> dict[str, dict[str, float]]:
    """Table 5 of Nakagawa et al.: per true-mode class, the mean HI of the best clips.

    Within each class (true grade mode) clips are sorted by HI, descending, and the
    mean HI of the top ceil(f * n) clips (at least one) is reported for each fraction
    f. Returns {"A": {"top25": .., "top50": .., "top75": .., "all": .., "n": ..}, ..}
    for the classes present.
    """
    hi = hi_per_clip(pred, target)
    modes = grade_mode(target)
    table: dict[str, dict[str, float]] = {}
    for c in np.unique(modes):
        values = np.sort(hi[modes == c])[::-1]
        row = {}
        for f in fractions:
            count = max(1, math.ceil(f * len(values)))
            row[f"top{round(f * 100)}"] = float(values[:count].mean())
        row["all"] = float(values.mean())
        row["n"] = len(values)
        table[GRADES[c]] = row
    return table


def metrics_all(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Every scalar metric, keyed as in the comparison table.

    Keys: emd, mse, jsd, ce, hi, macro_hi, macro_f1, mode_accuracy,
    within_one_accuracy, balanced_accuracy_1st .. balanced_accuracy_5th, n_clips.
    """
    p, q = _pair(pred, target)
    true_mode, pred_mode = grade_mode(q), grade_mode(p)
    result = {
        "emd": float(emd_per_clip(p, q).mean()),
        "mse": float(mse_per_clip(p, q).mean()),
        "jsd": float(jsd_per_clip(p, q).mean()),
        "ce": float(ce_per_clip(p, q).mean()),
        "hi": float(hi_per_clip(p, q).mean()),
        "macro_hi": macro_hi(p, q),
        "macro_f1": macro_f1(true_mode, pred_mode),
        "mode_accuracy": accuracy(true_mode, pred_mode),
        "within_one_accuracy": within_one_accuracy(p, q),
    }
    for n, suffix in zip(range(1, 6), ("1st", "2nd", "3rd", "4th", "5th")):
        result[f"balanced_accuracy_{suffix}"] = balanced_accuracy(
            nth_grade(q, n), nth_grade(p, n)
        )
    result["n_clips"] = int(p.shape[0])
    return result
