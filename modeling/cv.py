"""Patient-grouped, grade-mode-stratified cross-validation.

No patient is ever in both the training and the test side of a fold, and the
validation split used to choose the checkpoint is carved from the training
patients (never the test fold) -- the two faults of the reference code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from modeling.grades import N_GRADES


class CVError(ValueError):
    """The data cannot be split as asked (e.g. fewer patients than folds)."""


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray  # clip indices used for gradient steps
    val: np.ndarray  # clip indices for checkpoint selection (training patients)
    test: np.ndarray  # held-out clip indices


def stratified_group_split(
    labels: np.ndarray, groups: list | np.ndarray, *, k: int, seed: int
) -> list[np.ndarray]:
    """Partition clip indices into ``k`` groups-disjoint parts, stratified by label.

    Greedy, like scikit-learn's StratifiedGroupKFold: patients are visited in
    order of decreasing clip count (ties in a seeded random order) and each goes to
    the part that keeps per-class proportions most even across parts (then the
    smallest part, then the lowest index). Deterministic for a given seed.
    """
    labels = np.asarray(labels)
    group_names, group_of = np.unique(
        np.asarray(groups, dtype=str), return_inverse=True
    )
    if len(group_names) < k:
        raise CVError(
            f"{k} folds need at least {k} patients; the data have {len(group_names)}"
        )
    counts = np.zeros((len(group_names), N_GRADES))
    np.add.at(counts, (group_of, labels), 1)
    class_totals = counts.sum(0).clip(min=1)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(group_names))
    order = shuffled[np.argsort(-counts[shuffled].sum(1), kind="stable")]
    part_counts = np.zeros((k, N_GRADES))
    assignment = np.empty(len(group_names), dtype=int)
    for g in order:
        costs = []
        for part in range(k):
            trial = part_counts.copy()
            trial[part] += counts[g]
            spread = (trial / class_totals).std(axis=0).mean()
            costs.append((spread, trial[part].sum(), part))
        best = min(costs)[2]
        assignment[g] = best
        part_counts[best] += counts[g]
    parts = [np.flatnonzero(assignment[group_of] == p) for p in range(k)]
    if any(len(p) == 0 for p in parts):
        raise CVError(f"could not fill {k} folds; add patients or lower k")
    return parts


def folds_make(
    labels: np.ndarray,
    groups: list | np.ndarray,
    *,
    k: int,
    seed: int,
    val_fraction: float = 0.2,
) -> list[Fold]:
    """k folds, each with a patient-grouped validation split from its training side.

    The validation split is one part of a stratified-group split of the training
    patients into round(1 / val_fraction) parts (at least 2).
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups, dtype=str)
    parts = stratified_group_split(labels, groups, k=k, seed=seed)
    folds = []
    n_val_parts = max(2, round(1 / val_fraction))
    for i, test in enumerate(parts):
        rest = np.setdiff1d(np.arange(len(labels)), test)
        n_rest_patients = len(np.unique(groups[rest]))
        if n_rest_patients < 2:
            raise CVError(
                f"fold {i}: the training side has {n_rest_patients} patient(s); "
                "a patient-grouped validation split needs at least 2"
            )
        sub = stratified_group_split(
            labels[rest],
            groups[rest],
            k=min(n_val_parts, n_rest_patients),
            seed=seed + 1000 + i,
        )
        val = np.sort(rest[sub[0]])
        train = np.setdiff1d(rest, val)
        folds.append(Fold(index=i, train=train, val=val, test=np.sort(test)))
    return folds


def balanced_indices(
    labels: np.ndarray, n_samples: int, *, generator: torch.Generator
) -> np.ndarray:
    """Positions into ``labels`` drawn with replacement, each class equally likely.

    Each clip gets weight 1 / (clips of its class), so rare grades are seen as
    often as common ones.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=N_GRADES)
    weights = torch.tensor(1.0 / counts[labels], dtype=torch.float64)
    drawn = torch.multinomial(weights, n_samples, replacement=True, generator=generator)
    return drawn.numpy()


def fold_overlap_check(folds: list[Fold], groups: list | np.ndarray) -> None:
    """Raise if any patient appears on two sides of a fold (a guard, not a test)."""
    groups = np.asarray(groups, dtype=str)
    for fold in folds:
        sides = {"train": fold.train, "val": fold.val, "test": fold.test}
        names = {side: set(groups[idx]) for side, idx in sides.items()}
        for a, b in (("train", "test"), ("val", "test"), ("train", "val")):
            shared = names[a] & names[b]
            if shared:
                named = ", ".join(str(name) for name in sorted(shared)[:3])
                raise CVError(
                    f"fold {fold.index}: patient(s) {named} in both {a} and {b}"
                )
