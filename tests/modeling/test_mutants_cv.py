"""Balanced sampling draws from the generator it is given (docs/mutation.md)."""

import numpy as np
import torch

from modeling.cv import balanced_indices


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
