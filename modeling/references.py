"""Reference predictors on the comparison's folds (pure numpy, no training).

The chance floor (each test clip predicted by the panel of another test clip:
a label permutation), the training-set mean distribution (the floor to beat), a
k-nearest-neighbour
predictor on the speed features alone (what the clip must add to: every model's
head receives the speed too) and, on synthetic data, kNNs on the speed plus the
true shape defect and on the true latent quality. Each gives per-fold test
metrics and out-of-fold predictions, so the models can be paired with it clip
by clip (``modeling.paired``).
"""

from __future__ import annotations

import numpy as np

from modeling.cv import Fold
from modeling.data import ClipSet
from modeling.metrics import chance_metrics, emd_per_clip, metrics_all
from modeling.results import baseline_mean_distribution, mean_std

BASELINE_NAME = "train-set mean distribution"
SPEED_KNN_NAME = "speed features only (kNN)"
ORACLE_KNN_NAME = "true latent quality (kNN, synthetic oracle)"
SHAPE_KNN_NAME = "speed + true shape defect (kNN, synthetic)"
CHANCE_NAME = "chance: another test clip's panel (label permutation)"
CHANCE_PERMUTATIONS = 20
KNN_CHOICES = (5, 10, 20, 40)


def _standardise(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    mu, sd = x[fit].mean(0), x[fit].std(0)
    return (x - mu) / np.where(sd > 1e-12, sd, 1.0)


def knn_predict(
    x: np.ndarray, targets: np.ndarray, fit: np.ndarray, query: np.ndarray, k: int
) -> np.ndarray:
    """Mean target distribution of the ``k`` nearest ``fit`` clips of each query."""
    d = ((x[query][:, None, :] - x[fit][None, :, :]) ** 2).sum(-1)
    k = min(k, len(fit))
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return targets[fit][nearest].mean(1)


def knn_reference(
    features: np.ndarray, targets: np.ndarray, folds: list[Fold]
) -> list[dict]:
    """Per fold: test metrics of a k-nearest-neighbour predictor on ``features``
    (``knn_predictions``' rows)."""
    return knn_predictions(features, targets, folds)[0]


def knn_predictions(
    features: np.ndarray, targets: np.ndarray, folds: list[Fold]
) -> tuple[list[dict], np.ndarray]:
    """Per fold test metrics of a k-nearest-neighbour predictor on ``features``,
    and its out-of-fold predictions (N, 5).

    k is chosen among ``KNN_CHOICES`` by EMD on the fold's validation split
    (neighbours from its training split); the test clips then take their
    neighbours from training and validation clips together, as the models do
    with the selected checkpoint.
    """
    features = np.asarray(features, dtype=np.float64).reshape(len(targets), -1)
    rows = []
    oof = np.full(targets.shape, np.nan)
    for fold in folds:
        x = _standardise(features, fold.train)
        best_k = min(
            KNN_CHOICES,
            key=lambda k: emd_per_clip(
                knn_predict(x, targets, fold.train, fold.val, k), targets[fold.val]
            ).mean(),
        )
        seen = np.concatenate([fold.train, fold.val])
        x = _standardise(features, seen)
        pred = knn_predict(x, targets, seen, fold.test, best_k)
        oof[fold.test] = pred
        rows.append(metrics_all(pred, targets[fold.test]) | {"k": best_k})
    return rows, oof


def manifest_fields(clips: ClipSet, keys: tuple[str, ...]) -> dict:
    """Numeric per-clip manifest fields (e.g. the synthetic ground truth
    ``latent_quality``), each in clip order, or None unless every clip has it."""
    found = {}
    for key in keys:
        values = [record.extra.get(key) for record in clips.records]
        usable = len(values) == len(clips) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        found[key] = np.array(values, dtype=float) if usable else None
    return found


def chance_predictions(
    targets: np.ndarray, folds: list[Fold], *, seed: int = 0
) -> tuple[list[dict], np.ndarray]:
    """The chance floor on each fold: per fold, ``chance_metrics`` over the test
    clips (``CHANCE_PERMUTATIONS`` permutations of their panels), and as the
    out-of-fold prediction the first permutation's."""
    rows, oof = [], np.full(targets.shape, np.nan)
    for fold in folds:
        fold_seed = seed * 1000 + fold.index
        test = targets[fold.test]
        order = np.random.default_rng(fold_seed).permutation(len(test))
        oof[fold.test] = test[order]
        rows.append(
            chance_metrics(test, n_permutations=CHANCE_PERMUTATIONS, seed=fold_seed)
        )
    return rows, oof


def reference_predictions(
    clips: ClipSet, folds: list[Fold], *, seed: int = 0
) -> list[dict]:
    """Reference predictors on the same folds as the models, each with its
    per-fold test metrics ("folds") and out-of-fold predictions ("oof"): the
    training-set mean distribution (the floor), the chance floor (``seed`` sets
    its permutations), the speed features alone and,
    on synthetic data, the speed plus the true shape defect (all an image model
    could add) and the true latent quality.
    """
    targets = clips.targets.numpy().astype(np.float64)
    mean_oof = np.full(targets.shape, np.nan)
    for fold in folds:
        mean_oof[fold.test] = targets[np.concatenate([fold.train, fold.val])].mean(0)
    refs = [
        {
            "name": BASELINE_NAME,
            "folds": baseline_mean_distribution(clips, folds),
            "oof": mean_oof,
        }
    ]
    chance_folds, chance_oof = chance_predictions(targets, folds, seed=seed)
    refs.append({"name": CHANCE_NAME, "folds": chance_folds, "oof": chance_oof})
    inputs = []
    speed = clips.speed_raw.numpy()
    if speed.shape[1] > 0:
        inputs.append((SPEED_KNN_NAME, speed))
    truth = manifest_fields(clips, ("shape_defect", "latent_quality"))
    shape, quality = truth["shape_defect"], truth["latent_quality"]
    if shape is not None and speed.shape[1] > 0:
        inputs.append((SHAPE_KNN_NAME, np.column_stack([speed, shape])))
    if quality is not None:
        inputs.append((ORACLE_KNN_NAME, quality))
    for name, features in inputs:
        per_fold, oof = knn_predictions(features, targets, folds)
        refs.append({"name": name, "folds": per_fold, "oof": oof})
    return refs


def reference_rows(clips: ClipSet, folds: list[Fold]) -> list[dict]:
    """The kNN references (not the mean distribution or chance) as table rows:
    name, fold mean and std, the k chosen per fold."""
    rows = []
    for ref in reference_predictions(clips, folds):
        if ref["name"] in (BASELINE_NAME, CHANCE_NAME):
            continue
        mean, std = mean_std(ref["folds"])
        ks = [r["k"] for r in ref["folds"]]
        rows.append({"name": ref["name"], "mean": mean, "std": std, "k": ks})
    return rows
