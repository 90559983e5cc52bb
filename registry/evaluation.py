"""A model version against the panel, on its out-of-fold predictions (pure numpy).

Numbers in, numbers out: the metric table with intervals from a bootstrap over
patients (clips of one patient are not independent, so whole patients are
resampled), the grade-mode confusion, calibration per grade, the HI of each
grade-mode class, and the model placed among the experts on the experts' own
leave-one-out scale.
"""

from __future__ import annotations

import math

import numpy as np

from modeling.metrics import (
    emd_per_clip,
    grade_mode,
    hi_per_clip,
    metrics_all,
    top_hi_segments,
)

GRADE_SCORES = np.arange(1, 6)


def bootstrap_over_patients(
    pred: np.ndarray,
    target: np.ndarray,
    patients: list[str] | np.ndarray,
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """Every ``metrics_all`` figure with a percentile interval: each replicate
    draws as many patients as there are, with replacement, and scores all their
    clips. Returns {metric: {"value", "low", "high"}}."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    patients = np.asarray(patients, dtype=str)
    ids, index = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(index == i) for i in range(len(ids))]
    value = metrics_all(pred, target)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in value if k != "n_clips"}
    for _ in range(n_boot):
        chosen = rng.integers(0, len(ids), size=len(ids))
        rows = np.concatenate([members[c] for c in chosen])
        replicate = metrics_all(pred[rows], target[rows])
        for key in samples:
            samples[key].append(replicate[key])
    tail = (1 - level) / 2 * 100
    table = {}
    for key, values in samples.items():
        finite = np.array([v for v in values if math.isfinite(v)])
        low, high = (
            np.percentile(finite, [tail, 100 - tail]) if len(finite) else (np.nan,) * 2
        )
        table[key] = {"value": value[key], "low": float(low), "high": float(high)}
    return table


def mode_confusion(pred: np.ndarray, target: np.ndarray) -> list[list[int]]:
    """5 x 5 counts: rows the panel's grade mode, columns the model's."""
    matrix = np.zeros((5, 5), dtype=int)
    np.add.at(matrix, (grade_mode(np.asarray(target)), grade_mode(np.asarray(pred))), 1)
    return matrix.tolist()


def mean_grades(pred: np.ndarray, target: np.ndarray) -> tuple[list, list]:
    """(predicted mean grade, panel mean grade) per clip, on the 1..5 scale."""
    return (
        (np.asarray(pred) @ GRADE_SCORES).tolist(),
        (np.asarray(target) @ GRADE_SCORES).tolist(),
    )


def calibration(pred: np.ndarray, target: np.ndarray, *, n_bins: int = 5) -> list:
    """Per grade: bins of the predicted share (equal width over [0, 1]) with the
    mean predicted share, the mean panel share and the clip count per bin."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    edges = np.linspace(0, 1, n_bins + 1)
    rows = []
    for g in range(5):
        which = np.clip(np.digitize(pred[:, g], edges[1:-1]), 0, n_bins - 1)
        bins = []
        for b in range(n_bins):
            mask = which == b
            if mask.any():
                bins.append(
                    {
                        "predicted": float(pred[mask, g].mean()),
                        "observed": float(target[mask, g].mean()),
                        "n": int(mask.sum()),
                    }
                )
        rows.append(bins)
    return rows


def sample_indices(n: int, *, limit: int, seed: int = 0) -> np.ndarray:
    """All of ``range(n)``, or a random ``limit`` of them (sorted, the same for
    the same seed): what a chart can draw of many clips."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def box_statistics(values: np.ndarray) -> dict:
    """A box plot's figures as plotly computes them from points: quartiles
    (linear interpolation) and Tukey's fences (the farthest values within 1.5
    interquartile ranges of the box)."""
    values = np.asarray(values, float)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    return {
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "lowerfence": float(inside.min()),
        "upperfence": float(inside.max()),
        "n": int(len(values)),
    }


def hi_by_class(
    pred: np.ndarray, target: np.ndarray, *, max_points: int | None = None
) -> dict:
    """Fig. 6 and Table 5 of Nakagawa et al.: each clip's HI grouped by the
    panel's grade mode (``values``; past ``max_points`` clips their box figures,
    ``boxes``, instead), and the mean HI of its top 25/50/75 %."""
    hi = hi_per_clip(pred, target)
    modes = grade_mode(np.asarray(target))
    grouped = {"ABCDE"[c]: hi[modes == c] for c in np.unique(modes)}
    found = {"segments": top_hi_segments(pred, target)}
    if max_points is not None and len(hi) > max_points:
        found["boxes"] = {g: box_statistics(v) for g, v in grouped.items()}
    else:
        found["values"] = {g: v.round(4).tolist() for g, v in grouped.items()}
    return found


def _one_hot(modes: np.ndarray) -> np.ndarray:
    out = np.zeros((len(modes), 5))
    out[np.arange(len(modes)), modes] = 1.0
    return out


def model_as_expert(
    pred: np.ndarray,
    target: np.ndarray,
    patients,
    *,
    expert_emd: list[float],
    expert_within_one: list[float],
    expert_bias: list[float],
    n_boot: int = 200,
    seed: int = 0,
) -> dict:
    """The model scored as if it were one more expert voting its grade mode, on
    the scale of the experts' leave-one-out figures (their vote against the rest
    of the panel): mean EMD of the one-hot vote to the panel's distribution, the
    share within one grade of the panel's mode, and the signed bias (vote score
    minus the panel's mean score; + = harsher). ``closer_than`` counts experts
    with a larger EMD; its interval comes from the bootstrap over patients.
    The EMD of the full predicted distribution is given too (a distribution can
    sit closer to the panel than any single vote).

    ``model_vote_scores`` then ``model_among_experts``: the first reads every
    clip and never changes for a version, the second only the experts'
    figures."""
    scores = model_vote_scores(pred, target, patients, n_boot=n_boot, seed=seed)
    return model_among_experts(
        scores,
        expert_emd=expert_emd,
        expert_within_one=expert_within_one,
        expert_bias=expert_bias,
    )


def model_vote_scores(
    pred: np.ndarray, target: np.ndarray, patients, *, n_boot: int = 200, seed: int = 0
) -> dict:
    """The model's side of ``model_as_expert``: its vote's mean EMD with a
    bootstrap interval over patients, its distribution's EMD, the share within
    one grade and the signed bias."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    modes = grade_mode(pred)
    vote = _one_hot(modes)
    per_clip_emd = emd_per_clip(vote, target)
    panel_mode = grade_mode(target)
    within = (np.abs(modes - panel_mode) <= 1).astype(float)
    bias = (modes + 1) - target @ GRADE_SCORES
    patients = np.asarray(patients, dtype=str)
    ids, index = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(index == i) for i in range(len(ids))]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        rows = np.concatenate([members[c] for c in rng.integers(0, len(ids), len(ids))])
        boot.append(per_clip_emd[rows].mean())
    low, high = np.percentile(boot, [2.5, 97.5]) if boot else (np.nan, np.nan)
    return {
        "emd": float(per_clip_emd.mean()),
        "emd_low": float(low),
        "emd_high": float(high),
        "distribution_emd": float(emd_per_clip(pred, target).mean()),
        "within_one": float(within.mean()),
        "bias": float(bias.mean()),
    }


def model_among_experts(
    scores: dict,
    *,
    expert_emd: list[float],
    expert_within_one: list[float],
    expert_bias: list[float],
) -> dict:
    """``model_vote_scores`` placed among the experts' figures."""
    experts = np.array([e for e in expert_emd if e is not None], dtype=float)
    emd, low, high = scores["emd"], scores["emd_low"], scores["emd_high"]

    def closer_than(value: float) -> int:
        return int((experts > value).sum())

    within_experts = np.array([x for x in expert_within_one if x is not None], float)
    bias_experts = np.array([x for x in expert_bias if x is not None], float)

    return {
        **scores,
        # experts the model beats on agreement within one grade, and on the size
        # of the signed bias
        "within_one_above": int((within_experts < scores["within_one"]).sum()),
        "bias_smaller_than": int((np.abs(bias_experts) > abs(scores["bias"])).sum()),
        "n_experts": int(len(experts)),
        "closer_than": closer_than(emd),
        # A lower EMD (the interval's low end) beats more experts.
        "closer_than_low": closer_than(float(high)),
        "closer_than_high": closer_than(float(low)),
        "expert_emd": experts.tolist(),
        "expert_within_one": [float(x) for x in expert_within_one if x is not None],
        "expert_bias": [float(x) for x in expert_bias if x is not None],
        "median_expert_emd": float(np.median(experts)) if len(experts) else None,
    }


def sentence(comparison: dict) -> str:
    """The plain sentence the dashboard leads with."""
    n = comparison["n_experts"]
    if not n:
        return "No expert has enough votes to compare with yet."
    low, high = comparison["closer_than_low"], comparison["closer_than_high"]
    spread = f" (95 % interval: {low}–{high})" if low != high else ""
    return (
        f"Voting its most likely grade, the model is closer to the panel than "
        f"{comparison['closer_than']} of {n} experts{spread}."
    )
