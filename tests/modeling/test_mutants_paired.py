"""Paired differences and their bootstrap, pinned where mutation testing found them
loose (docs/mutation.md): the percentile interval against a plain-loop reference,
the seeds and levels passed on, the keys returned, the refusals and their texts,
and group ids of any type."""

import numpy as np
import pytest

from modeling.cv import Fold
from modeling.paired import (
    bootstrap_ci,
    paired_delta,
    paired_emd,
    seed_patient_draws,
    verdict,
)

VALUES = np.array([0.3, -0.1, 0.8, 0.05, -0.4, 0.2, 0.9])
GROUPS = ["P10", "P2", "P10", "P7", "P2", "P33", "P7"]


def _reference_ci(values, groups, *, n_boot, level, seed):
    """The patient bootstrap written out draw by draw: groups in sorted order of
    their text, ``n_boot`` rows of as many draws as groups, each resample's
    mean over every value of the drawn groups, the percentile interval."""
    names = sorted({str(g) for g in groups})
    members = [[v for v, g in zip(values, groups) if str(g) == n] for n in names]
    draws = np.random.default_rng(seed).integers(0, len(names), (n_boot, len(names)))
    stats = []
    for row in draws:
        drawn = [v for i in row for v in members[i]]
        stats.append(sum(drawn) / len(drawn))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(np.mean(values)), float(low), float(high)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.99])
def test_bootstrap_ci_is_the_patient_bootstrap_written_out(level):
    got = bootstrap_ci(VALUES, GROUPS, n_boot=300, level=level, seed=4)
    want = _reference_ci(VALUES, GROUPS, n_boot=300, level=level, seed=4)
    assert got == pytest.approx(want, abs=1e-12)


def test_bootstrap_ci_defaults_to_seed_0_and_repeats_itself():
    values = np.linspace(-1.0, 1.0, 12) ** 3  # 12 patients: seeds tell apart
    groups = [f"P{i}" for i in range(12)]
    first = bootstrap_ci(values, groups, n_boot=50)
    assert bootstrap_ci(values, groups, n_boot=50) == first
    assert bootstrap_ci(values, groups, n_boot=50, seed=0) == first
    assert bootstrap_ci(values, groups, n_boot=50, seed=1) != first


def test_numeric_group_ids_resample_as_their_text_does():
    numbers = [10, 2, 10, 7, 2, 33, 7]
    text = [str(n) for n in numbers]
    assert bootstrap_ci(VALUES, numbers, n_boot=200) == bootstrap_ci(
        VALUES, text, n_boot=200
    )
    diff = np.stack([VALUES, VALUES[::-1]])
    assert np.array_equal(
        seed_patient_draws(diff, numbers, n_boot=200),
        seed_patient_draws(diff, text, n_boot=200),
    )
    model, reference = diff, np.zeros_like(diff)
    folds = [[Fold(0, np.array([], int), np.array([], int), np.arange(7))]] * 2
    by_number = paired_delta(model, reference, patients=numbers, folds=folds)
    by_text = paired_delta(model, reference, patients=text, folds=folds)
    assert (by_number["low"], by_number["high"]) == (by_text["low"], by_text["high"])


@pytest.mark.parametrize("level", [0, 1, 1.5])
def test_a_level_outside_zero_one_is_refused(level):
    with pytest.raises(ValueError, match=rf"^level must be in \(0, 1\), got {level}$"):
        bootstrap_ci(VALUES, GROUPS, level=level)


def test_seed_patient_draws_refuse_empty_nan_or_three_dimensional_differences():
    message = r"^diff: expected \(seeds, clips\) without NaN, got \(1, 0\)$"
    with pytest.raises(ValueError, match=message):
        seed_patient_draws(np.zeros((1, 0)), [])
    with pytest.raises(ValueError, match=r"without NaN, got \(1, 2\)$"):
        seed_patient_draws(np.array([[0.1, np.nan]]), ["a", "b"])
    with pytest.raises(ValueError, match=r"without NaN, got \(1, 1, 2\)$"):
        seed_patient_draws(np.zeros((1, 1, 2)), ["a", "b"])
    with pytest.raises(ValueError, match=r"^3 groups for 2 clips$"):
        seed_patient_draws(np.zeros((1, 2)), ["a", "b", "c"])


def test_one_seed_and_one_clip_give_its_difference_in_every_draw():
    draws = seed_patient_draws(np.array([[0.25]]), ["a"], n_boot=5)
    assert draws.tolist() == [0.25] * 5


def _folds(n_seeds: int, n_clips: int) -> list[list[Fold]]:
    empty = np.array([], dtype=int)
    return [[Fold(0, empty, empty, np.arange(n_clips))] for _ in range(n_seeds)]


def test_paired_delta_passes_its_seed_and_reports_its_resamples():
    model = np.array([[0.3, 0.1, 0.5, 0.2], [0.2, 0.3, 0.6, 0.1]])
    reference = np.full_like(model, 0.25)
    patients = ["a", "b", "b", "c"]
    result = paired_delta(
        model, reference, patients=patients, folds=_folds(2, 4), n_boot=40, seed=3
    )
    stats = seed_patient_draws(model - reference, patients, n_boot=40, seed=3)
    want = np.percentile(stats, [2.5, 97.5])
    assert (result["low"], result["high"]) == pytest.approx(tuple(want), abs=1e-12)
    assert result["n_boot"] == 40
    assert result["n_seeds"] == 2


def test_paired_delta_refusals_say_what_does_not_match():
    ok = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"^model \(3, 2\) and reference \(3, 1\)"):
        paired_delta(ok, np.zeros((3, 1)), patients=["a", "b"], folds=_folds(3, 2))
    with pytest.raises(ValueError, match=r"^2 fold lists for 3 seeds$"):
        paired_delta(ok, ok, patients=["a", "b"], folds=_folds(2, 2))
    partial = np.array([[0.1, 0.2], [0.1, np.nan], [0.3, 0.4]])
    with pytest.raises(
        ValueError, match=r"^a seed scored some of the clips but not all of them$"
    ):
        paired_delta(partial, ok, patients=["a", "b"], folds=_folds(3, 2))


def test_paired_emd_passes_seed_level_and_resamples_on_and_reports_them():
    target = np.array(
        [[4, 1, 0, 0, 0], [0, 3, 2, 0, 0], [0, 0, 1, 3, 1], [1, 1, 1, 1, 1]]
    )
    candidate = np.array([[0.7, 0.3, 0, 0, 0], [0, 0.5, 0.5, 0, 0]] + [[0.2] * 5] * 2)
    reference = np.full((4, 5), 0.2)
    patients = ["a", "b", "b", "c"]
    result = paired_emd(
        candidate, reference, target, patients=patients, n_boot=30, level=0.5, seed=9
    )
    # EMD by hand (CDF differences): candidate rows 1-2 (.1, 0, 0, 0, 0 and
    # 0, .1, 0, 0, 0), the uniform reference (.6, .6, .4, .2, 0 and .2, .2, .4,
    # .2, 0); rows 3-4 are the reference itself
    cand = [0.1**2 / 5, 0.1**2 / 5]
    ref = [(0.6**2 + 0.6**2 + 0.4**2 + 0.2**2) / 5, (3 * 0.2**2 + 0.4**2) / 5]
    deltas = np.array([cand[0] - ref[0], cand[1] - ref[1], 0.0, 0.0])
    mean, low, high = bootstrap_ci(deltas, patients, n_boot=30, level=0.5, seed=9)
    assert result["delta"] == pytest.approx(mean)
    assert (result["low"], result["high"]) == pytest.approx((low, high))
    assert result["level"] == 0.5
    assert result["n_boot"] == 30
    assert result["seed"] == 9
    default = paired_emd(candidate, reference, target, patients=patients)
    explicit = paired_emd(candidate, reference, target, patients=patients, seed=0)
    assert default == explicit


def test_an_interval_touching_zero_is_level():
    assert verdict({"low": -1.0, "high": 0.0}) == "level"
    assert verdict({"low": 0.0, "high": 1.0}) == "level"
    assert verdict({"low": -1.0, "high": -1e-12}) == "better"
    assert verdict({"low": 1e-12, "high": 1.0}) == "worse"
