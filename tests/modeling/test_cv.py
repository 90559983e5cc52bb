import numpy as np
import pytest
import torch

from modeling.cv import (
    CVError,
    balanced_indices,
    fold_overlap_check,
    folds_make,
    stratified_group_split,
)


def _dataset(n_patients=24, seed=0):
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for p in range(n_patients):
        for _ in range(rng.integers(1, 6)):
            labels.append(int(rng.choice(5, p=[0.1, 0.3, 0.3, 0.2, 0.1])))
            groups.append(f"P{p}")
    return np.array(labels), np.array(groups)


@pytest.mark.parametrize("k", [3, 5])
def test_every_clip_is_in_exactly_one_test_fold(k):
    labels, groups = _dataset()
    folds = folds_make(labels, groups, k=k, seed=1)
    assert len(folds) == k
    tests = np.concatenate([f.test for f in folds])
    assert sorted(tests.tolist()) == list(range(len(labels)))
    for f in folds:
        covered = np.concatenate([f.train, f.val, f.test])
        assert sorted(covered.tolist()) == list(range(len(labels)))


@pytest.mark.parametrize("k", [3, 5])
def test_no_patient_is_on_two_sides_of_a_fold(k):
    labels, groups = _dataset()
    folds = folds_make(labels, groups, k=k, seed=2)
    for f in folds:
        train, val, test = (set(groups[i]) for i in (f.train, f.val, f.test))
        assert not train & test
        assert not val & test
        assert not train & val
        assert len(f.val) > 0
    fold_overlap_check(folds, groups)


def test_overlap_check_catches_a_leaking_fold():
    labels, groups = _dataset()
    folds = folds_make(labels, groups, k=3, seed=0)
    leaky = folds[0].__class__(
        index=0, train=folds[0].train, val=folds[0].val, test=folds[0].train[:1]
    )
    with pytest.raises(CVError, match="in both"):
        fold_overlap_check([leaky], groups)


def test_folds_are_roughly_stratified_by_grade_mode():
    labels, groups = _dataset(n_patients=60)
    parts = stratified_group_split(labels, groups, k=3, seed=0)
    overall = np.bincount(labels, minlength=5) / len(labels)
    for part in parts:
        share = np.bincount(labels[part], minlength=5) / len(part)
        assert np.abs(share - overall).max() < 0.1
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 0.2 * len(labels) / 3


def test_folds_are_deterministic_for_a_seed_and_vary_across_seeds():
    labels, groups = _dataset()
    a = folds_make(labels, groups, k=3, seed=7)
    b = folds_make(labels, groups, k=3, seed=7)
    c = folds_make(labels, groups, k=3, seed=8)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b))
    assert all(np.array_equal(x.val, y.val) for x, y in zip(a, b))
    assert any(not np.array_equal(x.test, y.test) for x, y in zip(a, c))


def test_too_few_patients_is_a_clear_error():
    with pytest.raises(CVError, match="at least 3 patients"):
        folds_make(np.array([0, 1, 2]), np.array(["a", "a", "b"]), k=3, seed=0)


def test_balanced_sampling_draws_each_class_about_equally():
    labels = np.array([0] * 90 + [4] * 10)
    gen = torch.Generator().manual_seed(0)
    drawn = balanced_indices(labels, 4000, generator=gen)
    share_rare = np.mean(labels[drawn] == 4)
    assert 0.45 < share_rare < 0.55


def test_a_default_epoch_visits_every_training_clip_once_without_resampling():
    """Class-balanced resampling is off unless asked for (cv.balanced_sampling):
    by default an epoch is a permutation of the training clips, even with a
    rare grade that balanced sampling would draw about half the time."""
    from modeling.config import config_from_dict
    from modeling.training import _epoch_order

    cfg = config_from_dict({})
    assert cfg.cv.balanced_sampling is False
    modes = np.array([0] * 21 + [4] * 2)  # grade modes of clips 0..22
    train = np.arange(3, 23)  # 18 common clips and the 2 rare ones
    order = _epoch_order(train, modes, cfg, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == train.tolist()
    on = config_from_dict({"cv": {"balanced_sampling": True}})
    drawn = _epoch_order(train, modes, on, torch.Generator().manual_seed(0))
    assert sorted(drawn.tolist()) != train.tolist()  # what the default avoids


def test_fold_spread_is_the_sample_standard_deviation():
    """Folds are a sample: the spread divides by k - 1. EMD 1, 2, 4: mean 7/3,
    squared deviations 16/9 + 1/9 + 25/9 = 42/9, over 2 -> std sqrt(7/3) (over
    3 it would be sqrt(14/9)); one fold has no spread."""
    from modeling.results import mean_std

    rows = [{"emd": 1.0, "n_clips": 4}, {"emd": 2.0, "n_clips": 4}, {"emd": 4.0}]
    mean, std = mean_std(rows)
    assert mean == {"emd": pytest.approx(7 / 3)}
    assert std == {"emd": pytest.approx((7 / 3) ** 0.5)}
    assert mean_std([{"emd": 0.5}]) == ({"emd": 0.5}, {"emd": 0.0})
