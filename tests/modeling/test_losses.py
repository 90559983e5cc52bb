import math

import pytest
import torch

from modeling import losses

ONE_A = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
ONE_E = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]])


def test_emd_is_mean_of_squared_cdf_differences():
    # CDFs 1,1,1,1,1 vs 0,0,0,0,1 -> squared differences 1,1,1,1,0 -> mean 0.8
    assert losses.emd_loss(ONE_A, ONE_E).item() == pytest.approx(0.8)
    half = torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0]])
    one_b = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    assert losses.emd_loss(half, one_b).item() == pytest.approx(0.25 / 5)


def test_emd_grows_with_grade_distance_but_mse_does_not():
    one_b = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    assert losses.emd_loss(ONE_A, ONE_E) > losses.emd_loss(ONE_A, one_b)
    assert losses.mse_loss(ONE_A, ONE_E) == pytest.approx(
        losses.mse_loss(ONE_A, one_b).item()
    )


def test_mse_jsd_ce_on_hand_computed_vectors():
    assert losses.mse_loss(ONE_A, ONE_E).item() == pytest.approx(0.4)
    assert losses.jsd_loss(ONE_A, ONE_E).item() == pytest.approx(math.log(2))
    uniform = torch.full((1, 5), 0.2)
    assert losses.ce_loss(uniform, ONE_A).item() == pytest.approx(math.log(5))
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0]])
    q = torch.tensor([[0.0, 0.5, 0.5, 0.0, 0.0]])
    # m = (.25, .5, .25, 0, 0); KL(p||m) = .5 ln2 = KL(q||m)
    assert losses.jsd_loss(p, q).item() == pytest.approx(0.5 * math.log(2))


def test_identical_distributions_give_zero_divergences():
    p = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.0]])
    for name in ("emd", "mse", "jsd"):
        assert losses.loss_get(name)(p, p).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("name", ["emd", "mse", "jsd", "ce"])
def test_losses_and_gradients_are_finite_at_zero_probabilities(name):
    pred = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    value = losses.loss_get(name)(pred, ONE_E)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(pred.grad).all()


def test_losses_average_over_the_batch():
    pred = torch.cat([ONE_A, ONE_A])
    target = torch.cat([ONE_A, ONE_E])
    assert losses.emd_loss(pred, target).item() == pytest.approx(0.4)
    assert losses.emd_per_sample(pred, target).tolist() == pytest.approx([0.0, 0.8])


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 5\).*\(2, 4\)"):
        losses.emd_loss(torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="batch, n_grades"):
        losses.mse_loss(torch.zeros(5), torch.zeros(5))


def test_unknown_loss_name_lists_the_choices():
    with pytest.raises(ValueError, match="ce, emd, jsd, mse"):
        losses.loss_get("hinge")


def test_diversity_loss_is_zero_for_orthogonal_and_one_for_parallel_features():
    a = torch.tensor([[1.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 2.0, 0.0]])
    c = torch.tensor([[0.0, 0.0, -3.0]])
    assert losses.diversity_loss([a, b, c]).item() == pytest.approx(0.0)
    assert losses.diversity_loss([a, 5 * a]).item() == pytest.approx(1.0)
    # |cos| (Fujii et al., eq. 17-18), not cos squared: 45 degrees -> 0.7071
    d = torch.tensor([[1.0, 1.0, 0.0]])
    assert losses.diversity_loss([a, d]).item() == pytest.approx(2**-0.5)
    assert losses.diversity_loss([a, -a]).item() == pytest.approx(1.0)
    # three branches: pairs (a, d), (a, b), (d, b) -> (0.7071 + 0 + 0.7071) / 3
    assert losses.diversity_loss([a, d, b]).item() == pytest.approx(2 * 2**-0.5 / 3)


def test_diversity_loss_rejects_mismatched_features():
    with pytest.raises(ValueError, match="at least two"):
        losses.diversity_loss([torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="same shape"):
        losses.diversity_loss([torch.zeros(2, 3), torch.zeros(2, 4)])


def test_diversity_loss_has_gradients_for_zero_features():
    a = torch.zeros(2, 4, requires_grad=True)
    b = torch.ones(2, 4, requires_grad=True)
    losses.diversity_loss([a, b]).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
