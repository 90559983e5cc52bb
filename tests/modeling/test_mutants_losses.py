"""Per-sample losses, error texts and the diversity loss's normalisation, pinned
where mutation testing found them loose (docs/mutation.md)."""

import math

import pytest
import torch

from modeling import losses

# Two rows that score differently under every loss.
PRED = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2]])
TARGET = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0, 0.0]])


def test_per_sample_losses_give_one_hand_computed_value_per_row():
    # row 1: A vs E; row 2: uniform vs A
    expected = {
        "mse": [2 / 5, (0.64 + 4 * 0.04) / 5],
        # m = (.6, .1, .1, .1, .1): KL(p||m) = .2 ln(1/3) + .8 ln 2, KL(q||m) = ln(5/3)
        "jsd": [
            math.log(2),
            0.5 * (0.2 * math.log(1 / 3) + 0.8 * math.log(2)) + 0.5 * math.log(5 / 3),
        ],
        "ce": [-math.log(losses.EPS), math.log(5)],
        "emd": [4 / 5, (0.64 + 0.36 + 0.16 + 0.04) / 5],
    }
    for name, values in expected.items():
        per_sample = getattr(losses, f"{name}_per_sample")(PRED, TARGET)
        assert per_sample.shape == (2,), name
        assert per_sample.tolist() == pytest.approx(values, rel=1e-5), name


@pytest.mark.parametrize("name", ["emd", "mse", "jsd", "ce"])
def test_a_shape_error_starts_with_the_losss_name(name):
    message = (
        rf"^{name}: pred \(2, 5\) and target \(2, 4\) "
        r"must have the same shape \(batch, n_grades\)$"
    )
    with pytest.raises(ValueError, match=message):
        losses.loss_get(name)(torch.zeros(2, 5), torch.zeros(2, 4))


def test_diversity_loss_error_names_the_first_tensor_and_the_odd_one():
    message = (
        r"^diversity_loss: every feature tensor must have the same shape "
        r"\(batch, dim\); tensor 0 is \(2, 3\), tensor 1 is \(2, 4\)$"
    )
    with pytest.raises(ValueError, match=message):
        losses.diversity_loss([torch.ones(2, 3), torch.ones(2, 4)])


def test_diversity_loss_normalises_each_sample_on_its_own():
    # Sample 1 parallel (|cos| 1), sample 2 orthogonal (0), at very different
    # norms: the mean over the batch is 0.5 only if each row is normalised alone.
    a = torch.tensor([[1.0, 0.0], [100.0, 0.0]])
    b = torch.tensor([[3.0, 0.0], [0.0, 0.01]])
    assert losses.diversity_loss([a, b]).item() == pytest.approx(0.5)


def test_a_feature_far_below_eps_counts_as_almost_no_direction():
    # norm 1e-10 is clamped to EPS = 1e-8 before dividing, so the tiny feature
    # becomes a vector of norm 0.01, and its |cos| with a parallel one is 0.01.
    tiny = torch.tensor([[1e-10, 0.0]])
    unit = torch.tensor([[1.0, 0.0]])
    assert losses.diversity_loss([tiny, unit]).item() == pytest.approx(0.01, rel=1e-4)
