import numpy as np
import pytest

from modeling.cv import Fold
from modeling.paired import bootstrap_ci, paired_delta, verdict


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
    # two seeds, so the interval has no width.
    assert (out["delta"], out["low"], out["high"]) == (1.5, 1.5, 1.5)
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
