import numpy as np
import pytest

from modeling.cv import Fold
from modeling.paired import (
    bootstrap_ci,
    family_level,
    family_n_boot,
    paired_delta,
    seed_patient_draws,
    verdict,
)


def test_constant_differences_give_a_zero_width_interval_at_that_value():
    values = np.full(30, 0.25)
    groups = np.repeat(np.arange(6), 5)
    assert bootstrap_ci(values, groups, n_boot=200) == (0.25, 0.25, 0.25)


def test_patient_resampling_is_wider_than_clip_resampling_when_a_patients_clips_agree():
    # 20 patients x 10 clips, every clip of a patient with the patient's value:
    # 20 independent values, not 200. The patient interval is about
    # 2 * 1.96 * sd / sqrt(20); resampling clips one by one pretends to have
    # sqrt(10) times more information.
    rng = np.random.default_rng(3)
    patient_value = rng.normal(0.0, 1.0, 20)
    values = np.repeat(patient_value, 10)
    patients = np.repeat(np.arange(20), 10)
    mean, low, high = bootstrap_ci(values, patients, n_boot=4000, seed=1)
    _, clip_low, clip_high = bootstrap_ci(values, np.arange(200), n_boot=4000, seed=1)
    expected = 2 * 1.96 * patient_value.std() / np.sqrt(20)
    assert mean == pytest.approx(patient_value.mean())
    assert high - low == pytest.approx(expected, rel=0.15)
    assert high - low > 2.5 * (clip_high - clip_low)
    assert low < mean < high


def test_a_patient_with_more_clips_weighs_more_as_in_the_plain_mean():
    values = np.array([1.0, 1.0, 1.0, 0.0])
    mean, low, high = bootstrap_ci(values, ["a", "a", "a", "b"], n_boot=2000)
    assert mean == 0.75
    # resamples: {a, a} -> 1, {b, b} -> 0, {a, b} -> 3/4
    assert low == 0.0 and high == 1.0


def test_paired_delta_by_hand_on_two_seeds():
    model = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.0, 0.0]])
    reference = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    folds = [
        Fold(0, train=np.array([2, 3]), val=np.array([], int), test=np.array([0, 1])),
        Fold(1, train=np.array([0, 1]), val=np.array([], int), test=np.array([2, 3])),
    ]
    out = paired_delta(
        model, reference, patients=["p", "p", "q", "q"], folds=[folds, folds]
    )
    # differences [[1, 2, 3, 4], [2, 1, 0, -1]]: every clip averages 1.5 over the
    # two seeds. Seeds and patients are resampled: seed 1 twice (prob. 1/4) with
    # patient q twice (prob. 1/4) gives (0 - 1) / 2 = -0.5, seed 0 twice with q
    # twice gives (3 + 4) / 2 = 3.5, the extremes, each with probability 1/16 >
    # 2.5 %: the 95 % interval is [-0.5, 3.5]. Averaging the seeds first (the
    # patient bootstrap alone) would give [1.5, 1.5]: no training variance.
    assert (out["delta"], out["low"], out["high"]) == (1.5, -0.5, 3.5)
    assert out["n_seeds"] == 2
    assert out["per_seed"] == [2.5, 0.5]
    assert out["per_fold"] == [[1.5, 3.5], [1.5, -0.5]]
    assert out["n_clips"] == 4 and out["n_patients"] == 2


def test_paired_delta_pools_only_the_seeds_a_row_ran():
    model = np.array([[1.0, 3.0], [np.nan, np.nan]])
    reference = np.zeros((2, 2))
    fold = Fold(0, train=np.array([], int), val=np.array([], int), test=np.arange(2))
    out = paired_delta(model, reference, patients=["p", "q"], folds=[[fold], [fold]])
    assert out["delta"] == 2.0
    assert out["per_seed"] == [2.0, None]
    assert out["per_fold"] == [[2.0], [None]]


def test_verdict_needs_the_whole_interval_on_one_side_of_zero():
    assert verdict({"low": -0.3, "high": -0.1}) == "better"
    assert verdict({"low": 0.1, "high": 0.3}) == "worse"
    assert verdict({"low": -0.1, "high": 0.1}) == "level"


def test_bootstrap_rejects_groups_that_do_not_match_the_values():
    with pytest.raises(ValueError, match="3 groups for 2 values"):
        bootstrap_ci(np.zeros(2), ["a", "b", "c"])
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci(np.zeros(0), [])


def test_seed_and_patient_draws_follow_the_exact_two_way_bootstrap_law():
    # 2 seeds x 2 patients, one clip each: diff[s, g]. A resample draws two seeds
    # ({0,0}, {0,1}, {1,1} with prob. 1/4, 1/2, 1/4) and two patients (same
    # law); the statistic is the drawn patients' mean of the drawn seeds' mean.
    diff = np.array([[0.0, 4.0], [2.0, 2.0]])
    seed_mix = {(1.0, 0.0): 0.25, (0.5, 0.5): 0.5, (0.0, 1.0): 0.25}
    patient_mix = {(2, 0): 0.25, (1, 1): 0.5, (0, 2): 0.25}
    exact: dict[float, float] = {}
    for w, pw in seed_mix.items():
        per_patient = np.array(w) @ diff
        for m, pm in patient_mix.items():
            value = float(np.dot(m, per_patient) / 2)
            exact[value] = exact.get(value, 0.0) + pw * pm
    # by hand: seed weights (1, 0) give patients (0, 4); (1/2, 1/2) give (1, 3);
    # (0, 1) give (2, 2); so the values 0, 1, 2, 3, 4 have these probabilities
    assert exact == {0.0: 1 / 16, 2.0: 10 / 16, 4.0: 1 / 16, 1.0: 2 / 16, 3.0: 2 / 16}
    draws = seed_patient_draws(diff, ["p", "q"], n_boot=40000, seed=2)
    values, counts = np.unique(draws, return_counts=True)
    assert dict(zip(values.tolist(), (counts / len(draws)).tolist(), strict=True)) == (
        pytest.approx(exact, abs=0.01)
    )


def test_one_seed_draws_are_the_patient_bootstrap():
    rng = np.random.default_rng(4)
    values = np.repeat(rng.normal(0.0, 1.0, 15), 3)
    patients = np.repeat(np.arange(15), 3)
    draws = seed_patient_draws(values[None, :], patients, n_boot=8000, seed=1)
    _, low, high = bootstrap_ci(values, patients, n_boot=8000, seed=1)
    assert np.percentile(draws, [2.5, 97.5]) == pytest.approx([low, high], rel=0.1)


def test_seed_variance_widens_the_interval_when_seeds_disagree():
    # Two seeds whose differences are shifted by +-1 for every clip: patients
    # alone see the seed-averaged values and no spread; with seeds resampled
    # the interval reaches about +-1.
    base = np.repeat(np.linspace(-0.1, 0.1, 10), 2)
    diff = np.stack([base + 1.0, base - 1.0])
    patients = np.repeat(np.arange(10), 2)
    draws = seed_patient_draws(diff, patients, n_boot=4000, seed=0)
    low, high = np.percentile(draws, [2.5, 97.5])
    assert low < -0.9 and high > 0.9
    _, p_low, p_high = bootstrap_ci(diff.mean(0), patients, n_boot=4000, seed=0)
    assert p_high - p_low < 0.2


def test_bonferroni_level_and_the_resamples_it_needs():
    assert family_level(1) == pytest.approx(0.95)
    assert family_level(20) == pytest.approx(1 - 0.05 / 20)
    # 0.0025 / 2 beyond each end: 25 draws there need 20,000 resamples
    assert family_n_boot(family_level(20)) == 20000
    assert family_n_boot(0.95) == 2000  # 25 / 0.025 = 1000 < the default
    with pytest.raises(ValueError, match="at least one"):
        family_level(0)
