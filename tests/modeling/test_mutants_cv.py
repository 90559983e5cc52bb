"""Balanced sampling draws from the generator it is given; a leaking fold is
reported as the message says (docs/mutation.md)."""

import re

import numpy as np
import pytest
import torch

from modeling.cv import CVError, Fold, balanced_indices, fold_overlap_check


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
    assert re.fullmatch(
        r"fold 0: patient\(s\) \[.*'10'.*'2'.*'3'.*\] in both train and test", message
    )
    assert "4" not in message
