"""Balanced sampling draws from the generator it is given; a leaking fold is
reported as the message says (docs/mutation.md)."""

import numpy as np
import pytest
import torch

from modeling.cv import (
    CVError,
    Fold,
    balanced_indices,
    fold_overlap_check,
    folds_make,
    stratified_group_split,
)


def test_balanced_draws_come_from_the_given_generator_not_the_global_one():
    labels = np.array([0, 0, 0, 1, 4])
    draws = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        generator = torch.Generator().manual_seed(5)
        draws.append(balanced_indices(labels, 50, generator=generator))
    assert np.array_equal(draws[0], draws[1])
    # the same draws as multinomial on the weights 1/3, 1/3, 1/3, 1, 1
    weights = torch.tensor([1 / 3, 1 / 3, 1 / 3, 1.0, 1.0], dtype=torch.float64)
    expected = torch.multinomial(
        weights, 50, replacement=True, generator=torch.Generator().manual_seed(5)
    )
    assert np.array_equal(draws[0], expected.numpy())


def test_a_leak_names_at_most_three_patients_as_text_in_sorted_order():
    # patients 10, 2, 3, 4 each have a clip on both sides of fold 0; as text they
    # sort 10, 2, 3, 4 and the message names the first three
    groups = [10, 2, 3, 4, 10, 2, 3, 4]
    fold = Fold(
        index=0, train=np.arange(4), val=np.array([], dtype=int), test=np.arange(4, 8)
    )
    with pytest.raises(CVError) as caught:
        fold_overlap_check([fold], groups)
    message = str(caught.value)
    # plain names, not numpy reprs (np.str_('10') under numpy 2)
    assert message == "fold 0: patient(s) 10, 2, 3 in both train and test"


def test_the_validation_split_is_the_asked_fraction_of_the_training_patients():
    # 20 patients, one clip each, 2 folds: 10 training patients per fold, of
    # which 1 / val_fraction parts (at least 2) make one the validation split
    labels = np.arange(20) % 5
    groups = [f"P{i:02d}" for i in range(20)]
    for val_fraction, n_val in ((None, 2), (0.5, 5), (0.25, 3)):
        kwargs = {} if val_fraction is None else {"val_fraction": val_fraction}
        for fold in folds_make(labels, groups, k=2, seed=0, **kwargs):
            assert (len(fold.train), len(fold.val), len(fold.test)) == (
                10 - n_val,
                n_val,
                10,
            )


def test_a_fold_whose_training_side_has_one_patient_is_refused_with_the_reason():
    message = (
        r"^fold 0: the training side has 1 patient\(s\); "
        r"a patient-grouped validation split needs at least 2$"
    )
    with pytest.raises(CVError, match=message):
        folds_make(np.array([0, 1]), ["a", "b"], k=2, seed=0)


def test_each_folds_validation_split_is_seeded_seed_plus_1000_plus_the_fold():
    labels = np.arange(30) % 5
    groups = [f"P{i:02d}" for i in range(30)]
    for fold in folds_make(labels, groups, k=3, seed=4):
        rest = np.sort(np.concatenate([fold.train, fold.val]))
        sub = stratified_group_split(
            labels[rest], np.asarray(groups)[rest], k=5, seed=4 + 1000 + fold.index
        )
        assert np.array_equal(fold.val, np.sort(rest[sub[0]]))


def _reference_split(labels, groups, *, k, seed):
    """stratified_group_split as its docstring tells it, patient by patient:
    patients (ids as text, sorted) in a seeded random order, then by decreasing
    clip count (a stable sort keeps the random order among ties); each goes to
    the part with the least spread of per-class shares across parts (the share
    of a class's clips in each part; the spread the mean over classes of the
    standard deviation over parts), then the smallest part, then the lowest."""
    names = sorted({str(g) for g in groups})
    group_of = [names.index(str(g)) for g in groups]
    counts = np.zeros((len(names), 5))
    for g, label in zip(group_of, labels):
        counts[g, label] += 1
    totals = np.maximum(counts.sum(0), 1)
    shuffled = np.random.default_rng(seed).permutation(len(names))
    order = sorted(shuffled, key=lambda g: -counts[g].sum())
    part_counts = np.zeros((k, 5))
    assignment = {}
    for g in order:
        costs = []
        for part in range(k):
            trial = part_counts.copy()
            trial[part] += counts[g]
            costs.append(((trial / totals).std(axis=0).mean(), trial[part].sum(), part))
        best = min(costs)[2]
        assignment[g] = best
        part_counts[best] += counts[g]
    return [
        [i for i, g in enumerate(group_of) if assignment[g] == part]
        for part in range(k)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_group_split_follows_the_greedy_rule_patient_by_patient(seed):
    # 24 patients (ids given as numbers) with 1-4 clips, many of equal size, and
    # one grade (E) held by a single clip
    rng = np.random.default_rng(100 + seed)
    sizes = rng.integers(1, 5, 24)
    groups = np.repeat(np.arange(24) * 7 % 31, sizes)
    labels = rng.choice([0, 1, 2, 3], len(groups), p=[0.4, 0.3, 0.2, 0.1])
    labels[len(labels) // 2] = 4
    for k in (3, 5):
        parts = stratified_group_split(labels, groups, k=k, seed=seed)
        want = _reference_split(labels, groups, k=k, seed=seed)
        assert [p.tolist() for p in parts] == want


def test_a_part_the_greedy_rule_leaves_empty_is_refused_with_the_way_out():
    # 4 patients for 4 parts: with seed 2 the rule puts two patients together
    labels = np.array([2, 2, 1, 4, 0, 2, 0, 0])
    groups = np.repeat(np.arange(4), [3, 2, 1, 2])
    with pytest.raises(
        CVError, match=r"^could not fill 4 folds; add patients or lower k$"
    ):
        stratified_group_split(labels, groups, k=4, seed=2)
