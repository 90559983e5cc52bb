"""Paired differences against a reference, with a patient-level bootstrap (pure).

Two predictors scored on the same held-out clips differ clip by clip; the
difference of their mean EMDs is judged by resampling *patients* (every clip of
a drawn patient comes along), because clips of one patient are alike and
resampling clips one by one would make the interval too narrow.

Over several seeds (each a complete cross-validation with its own folds,
initialisation and data order, so every clip is held out once per seed) the
estimate is the mean over clips of each clip's seed-averaged difference, and the
interval resamples the *seeds and the patients* (a crossed two-way bootstrap:
each resample draws seeds with replacement and patients with replacement, and
averages the drawn seeds' differences over the drawn patients' clips), so it
carries how much training itself varies as well as which patients were seen.
With one seed it is the patient bootstrap.

A document showing many intervals corrects them for multiplicity with
Bonferroni (``family_level``): each interval at 1 - 0.05 / m for a family of m,
so that all of them hold together with 95 % probability.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modeling.metrics import emd_per_clip

if TYPE_CHECKING:  # modeling.cv imports torch; the web process scores without it
    from modeling.cv import Fold

N_BOOT = 2000
LEVEL = 0.95
# the percentile interval at a corrected level needs this many resamples beyond
# each end of it (family_n_boot)
TAIL_DRAWS = 25


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


def seed_patient_draws(
    diff: np.ndarray,
    groups: list | np.ndarray,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> np.ndarray:
    """The bootstrap distribution (n_boot,) of the mean difference when seeds
    and patient groups are both resampled with replacement.

    ``diff`` (S, N): S seeds' differences for the same N clips (no NaN);
    ``groups``: each clip's patient. A resample draws S seeds and as many
    patients as there are; its statistic is the mean over every clip of the
    drawn patients (counted as often as drawn) of the clip's mean over the drawn
    seeds (counted as often as drawn). With S = 1 it is ``bootstrap_ci``'s
    patient bootstrap.
    """
    diff = np.atleast_2d(np.asarray(diff, dtype=np.float64))
    if diff.ndim != 2 or diff.size == 0 or np.isnan(diff).any():
        raise ValueError(f"diff: expected (seeds, clips) without NaN, got {diff.shape}")
    names, group_of = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    if len(group_of) != diff.shape[1]:
        raise ValueError(f"{len(group_of)} groups for {diff.shape[1]} clips")
    n_seeds, n_groups = diff.shape[0], len(names)
    sums = np.stack(
        [np.bincount(group_of, weights=d, minlength=n_groups) for d in diff]
    )  # (S, G): each seed's sum over each patient's clips
    counts = np.bincount(group_of, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, n_seeds, (n_boot, n_seeds))
    patient_draws = rng.integers(0, n_groups, (n_boot, n_groups))
    seed_weight = _times_drawn(seed_draws, n_seeds) / n_seeds
    patient_times = _times_drawn(patient_draws, n_groups)
    per_patient = seed_weight @ sums  # (B, G): drawn seeds' mean, summed per patient
    return (per_patient * patient_times).sum(1) / (patient_times @ counts)


def _times_drawn(draws: np.ndarray, n: int) -> np.ndarray:
    """(B, n): how often each of n items is drawn in each row of ``draws``."""
    flat = (np.arange(len(draws))[:, None] * n + draws).ravel()
    return (
        np.bincount(flat, minlength=len(draws) * n)
        .reshape(len(draws), n)
        .astype(np.float64)
    )


def family_level(n_intervals: int, level: float = LEVEL) -> float:
    """Bonferroni: the level of each of ``n_intervals`` intervals so that all of
    them hold together with probability ``level``."""
    if n_intervals < 1:
        raise ValueError(f"a family needs at least one interval, got {n_intervals}")
    return 1.0 - (1.0 - level) / n_intervals


def family_n_boot(level: float, n_boot: int = N_BOOT) -> int:
    """Enough resamples for a percentile interval at ``level``: at least
    ``TAIL_DRAWS`` beyond each end (and never fewer than ``n_boot``)."""
    tail = (1.0 - level) / 2
    return max(n_boot, int(np.ceil(TAIL_DRAWS / tail - 1e-6)))


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
    interval at ``level`` when the seeds the row ran and the patients are
    resampled: ``seed_patient_draws``), ``per_seed`` (each seed's mean
    difference), ``per_fold`` (each seed's folds' mean differences, seed by
    seed), ``n_seeds``, ``n_boot`` and ``level``.
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
    ran = ~np.isnan(diff[:, scored]).any(1)  # the seeds with every scored clip
    if not np.isnan(diff[:, scored][~ran]).all():
        raise ValueError("a seed scored some of the clips but not all of them")
    stats = seed_patient_draws(
        diff[ran][:, scored],
        np.asarray(patients, dtype=str)[scored],
        n_boot=n_boot,
        seed=seed,
    )
    tail = (1 - level) / 2 * 100
    low, high = (float(v) for v in np.percentile(stats, [tail, 100 - tail]))
    mean = float(per_clip.mean())
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
        "n_seeds": int(ran.sum()),
        "n_boot": n_boot,
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
