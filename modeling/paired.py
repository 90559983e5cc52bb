"""Paired differences against a reference, with a patient-level bootstrap (pure).

Two predictors scored on the same held-out clips differ clip by clip; the
difference of their mean EMDs is judged by resampling *patients* (every clip of
a drawn patient comes along), because clips of one patient are alike and
resampling clips one by one would make the interval too narrow.

Over several seeds (each a complete cross-validation, so every clip is held out
once per seed) a clip's difference is first averaged over the seeds it has, and
the patients are then resampled: the seeds' shared test clips are one sample,
not independent ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modeling.metrics import emd_per_clip

if TYPE_CHECKING:  # modeling.cv imports torch; the web process scores without it
    from modeling.cv import Fold

N_BOOT = 2000
LEVEL = 0.95


def bootstrap_ci(
    values: np.ndarray,
    groups: list | np.ndarray,
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its percentile interval
    when whole ``groups`` are resampled with replacement.

    A resample draws as many groups as there are, with replacement; its
    statistic is the mean over every value of the drawn groups (so a patient
    with more clips weighs more, as in the plain mean). Pass each value's own
    index as its group to resample values one by one.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"values: expected a non-empty 1-d array, got {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    names, group_of = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    if len(group_of) != len(values):
        raise ValueError(f"{len(group_of)} groups for {len(values)} values")
    sums = np.bincount(group_of, weights=values, minlength=len(names))
    counts = np.bincount(group_of, minlength=len(names)).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, len(names), (n_boot, len(names)))
    stats = sums[draws].sum(1) / counts[draws].sum(1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def paired_delta(
    model: np.ndarray,
    reference: np.ndarray,
    *,
    patients: list | np.ndarray,
    folds: list[list[Fold]],
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> dict:
    """Model minus reference, per clip, pooled over seeds, with its interval.

    ``model`` and ``reference``: per-clip test scores (S, N) of S seeds (NaN
    where a clip has none); ``folds[s]``: seed s's folds. Returns ``delta``
    (mean over clips of the seed-averaged difference), ``low``/``high`` (the
    patient bootstrap interval), ``per_seed`` (each seed's mean difference) and
    ``per_fold`` (each seed's folds' mean differences, seed by seed).
    """
    model = np.atleast_2d(np.asarray(model, dtype=np.float64))
    reference = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    if model.shape != reference.shape:
        raise ValueError(f"model {model.shape} and reference {reference.shape} differ")
    if len(folds) != model.shape[0]:
        raise ValueError(f"{len(folds)} fold lists for {model.shape[0]} seeds")
    diff = model - reference
    scored = ~np.isnan(diff).all(0)
    per_clip = np.nanmean(diff[:, scored], axis=0)
    mean, low, high = bootstrap_ci(
        per_clip,
        np.asarray(patients, dtype=str)[scored],
        n_boot=n_boot,
        level=level,
        seed=seed,
    )
    per_fold = [
        [_mean_or_none(d[f.test]) for f in seed_folds]
        for d, seed_folds in zip(diff, folds, strict=True)
    ]
    return {
        "delta": mean,
        "low": low,
        "high": high,
        "level": level,
        "per_seed": [_mean_or_none(d) for d in diff],
        "per_fold": per_fold,
        "n_clips": int(scored.sum()),
        "n_patients": len(set(np.asarray(patients, dtype=str)[scored])),
    }


def paired_emd(
    candidate: np.ndarray,
    reference: np.ndarray,
    target: np.ndarray,
    *,
    patients: list | np.ndarray,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> dict:
    """Two predictors' distributions (N, 5) for the same clips against the same
    ``target`` (vote counts or shares): each clip's EMD under both, the
    candidate-minus-reference difference averaged over clips, its patient
    bootstrap interval and the ``verdict`` (negative: the candidate is closer).

    Returns ``n_clips``, ``n_patients``, ``candidate_emd`` and ``reference_emd``
    (means over the clips), ``delta``, ``low``, ``high``, ``level``, ``n_boot``,
    ``seed`` and ``verdict``.
    """
    candidate_emd = emd_per_clip(candidate, target)
    reference_emd = emd_per_clip(reference, target)
    mean, low, high = bootstrap_ci(
        candidate_emd - reference_emd, patients, n_boot=n_boot, level=level, seed=seed
    )
    result = {
        "n_clips": len(candidate_emd),
        "n_patients": len(set(np.asarray(patients, dtype=str))),
        "candidate_emd": float(candidate_emd.mean()),
        "reference_emd": float(reference_emd.mean()),
        "delta": mean,
        "low": low,
        "high": high,
        "level": level,
        "n_boot": n_boot,
        "seed": seed,
    }
    result["verdict"] = verdict(result)
    return result


def _mean_or_none(values: np.ndarray) -> float | None:
    """The mean of the scored values; None for a seed a row did not run."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def verdict(delta: dict) -> str:
    """ "better" / "worse" when the interval excludes zero (lower is better),
    else "level"."""
    if delta["high"] < 0:
        return "better"
    if delta["low"] > 0:
        return "worse"
    return "level"
