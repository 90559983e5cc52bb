"""RoSTFine: patch selection keeps token order, heads average, diversity loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from modeling.models import TINY_KWARGS, create_model
from modeling.models.rostfine import branch_inputs, diversity_loss, patches_select


def _tiny_rostfine(**overrides):
    torch.manual_seed(0)
    return create_model("rostfine", **{**TINY_KWARGS["rostfine"], **overrides})


def test_patch_selection_returns_top_scoring_patches_in_token_order():
    # Patch n of frame t carries the value 100 * t + n, so a wrong gather
    # (other frame, other position, or score order) shows in the values.
    b, t, n, d = 2, 3, 6, 4
    values = (100 * torch.arange(t)[:, None] + torch.arange(n)[None, :]).float()
    patches = values[None, :, :, None].expand(b, t, n, d).clone()
    scores = torch.tensor(
        [
            [0.1, 0.9, 0.2, 0.8, 0.0, 0.7],  # top-3: 1, 3, 5
            [0.9, 0.0, 0.0, 0.0, 0.8, 0.7],  # top-3: 0, 4, 5
            [0.0, 0.1, 0.9, 0.8, 0.7, 0.0],  # top-3: 2, 3, 4
        ]
    ).expand(b, t, n)
    selected, index = patches_select(patches, scores, 3)
    expected_index = torch.tensor([[1, 3, 5], [0, 4, 5], [2, 3, 4]])
    assert torch.equal(index, expected_index.expand(b, t, 3))
    expected_values = 100 * torch.arange(t)[:, None] + expected_index
    assert torch.equal(selected[..., 0], expected_values.float().expand(b, t, 3))
    assert torch.equal(selected[..., 0], selected[..., -1])


def test_patch_selection_rejects_k_larger_than_the_patch_count():
    with pytest.raises(ValueError, match="k must be in 1..4"):
        patches_select(torch.zeros(1, 2, 4, 3), torch.zeros(1, 2, 4), 5)


def test_patch_selection_follows_the_last_layers_cls_attention():
    model = _tiny_rostfine().eval()
    video = torch.randn(2, 3, 4, 32, 32)
    captured = {}
    original = patches_select

    def spy(patches, scores, k):
        captured["scores"] = scores
        return original(patches, scores, k)

    import modeling.models.rostfine as rostfine_module

    rostfine_module.patches_select = spy
    try:
        with torch.no_grad():
            model.branch_features(video)
            _, maps = model.forward_tokens(video, cls_attention_layers=2)
    finally:
        rostfine_module.patches_select = original
    assert len(maps) == 2
    assert maps[0].shape == (2, 4, 2, 4)  # (B, T, heads, N)
    # Each head's [CLS] attention over the patches of a frame is a distribution
    # over patches and the [CLS] token, so it sums to at most one.
    assert (maps[0].sum(dim=-1) <= 1 + 1e-5).all()
    torch.testing.assert_close(captured["scores"], torch.stack(maps).mean(dim=(0, 3)))


def test_forward_is_log_of_the_averaged_head_probabilities():
    model = _tiny_rostfine().eval()
    video, speed = torch.randn(2, 3, 4, 32, 32), torch.randn(2, 1)
    with torch.no_grad():
        combined = model(video, speed)
        head_logits, _ = model.training_outputs(video, speed)
    averaged = torch.stack([F.softmax(x, dim=-1) for x in head_logits]).mean(dim=0)
    torch.testing.assert_close(F.softmax(combined, dim=-1), averaged)
    torch.testing.assert_close(combined.exp(), averaged)
    # The three heads differ, so averaging is not a no-op.
    assert not torch.allclose(head_logits[0], head_logits[1])


def test_each_head_gets_gradients_from_its_own_loss():
    model = _tiny_rostfine().train()
    video, speed = torch.randn(2, 3, 4, 32, 32), torch.randn(2, 1)
    head_logits, aux = model.training_outputs(video, speed)
    assert len(head_logits) == 3 and aux.ndim == 0
    head_logits[1].sum().backward()
    assert model.spatial_head.fc.weight.grad is not None
    assert model.temporal_head.fc.weight.grad is None
    assert model.spatial_blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_diversity_loss_is_zero_for_orthogonal_and_one_for_equal_features():
    eye = torch.eye(3)
    orthogonal = [eye[i : i + 1] for i in range(3)]
    assert float(diversity_loss(orthogonal)) == pytest.approx(0.0)
    same = [torch.ones(1, 3)] * 3
    assert float(diversity_loss(same)) == pytest.approx(1.0)


def test_alpha_scales_the_diversity_term():
    video, speed = torch.randn(2, 3, 4, 32, 32), torch.randn(2, 1)
    with torch.no_grad():
        _, aux_small = _tiny_rostfine(alpha=0.1).eval().training_outputs(video, speed)
        _, aux_large = _tiny_rostfine(alpha=1.0).eval().training_outputs(video, speed)
    assert math.isclose(float(aux_large), 10 * float(aux_small), rel_tol=1e-4)


def test_each_branch_receives_cls_and_the_selected_tokens_of_known_maps():
    # Token values name their place: [CLS] is -1, patch n of frame t is 10t + n.
    b, t, n, d, k = 2, 3, 4, 5, 2
    patch_values = (10 * torch.arange(t)[:, None] + torch.arange(n)).float()
    tokens = torch.cat([torch.full((1,), -1.0), patch_values.reshape(-1)])[
        None, :, None
    ].expand(b, 1 + t * n, d)
    scores = torch.tensor(
        [[0.1, 0.7, 0.0, 0.9], [0.8, 0.0, 0.6, 0.1], [0.0, 0.2, 0.3, 0.4]]
    ).expand(b, t, n)  # top-2 per frame: {1, 3}, {0, 2}, {2, 3}
    spatial, temporal, index = branch_inputs(tokens, scores, k, t)
    assert spatial.shape == (b * t, 1 + k, d) and temporal.shape == (b, 1 + t * k, d)
    assert spatial[:3, :, 0].tolist() == [[-1, 1, 3], [-1, 10, 12], [-1, 22, 23]]
    assert spatial[3:, :, 0].tolist() == spatial[:3, :, 0].tolist()  # 2nd clip
    assert temporal[0, :, 0].tolist() == [-1, 1, 3, 10, 12, 22, 23]
    assert index[0].tolist() == [[1, 3], [0, 2], [2, 3]]


def test_the_papers_defaults_and_the_optional_residual():
    import inspect

    from modeling.models.rostfine import RoSTFine, rostfine

    defaults = {
        name: p.default for name, p in inspect.signature(rostfine).parameters.items()
    }
    assert defaults["num_selected"] == 60 and defaults["branch_depth"] == 6
    assert defaults["branch_heads"] == 8 and defaults["alpha"] == 1.0
    assert defaults["branch_residual"] is False
    model = _tiny_rostfine(branch_depth=3)
    assert isinstance(model, RoSTFine) and len(model.spatial_blocks) == 3
    assert len(model.temporal_blocks) == 3
    assert model.spatial_blocks[0].attn.num_heads == 2
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        plain = model.eval().branch_features(video)
        model.branch_residual = True
        added = model.branch_features(video)
    torch.testing.assert_close(added[1], plain[1] + plain[0])
    torch.testing.assert_close(added[2], plain[2] + plain[0])


def _cls_attention_by_hand(block, normed, b, t):
    """Softmax(q_cls . k / sqrt(d_head)) of one block's spatial attention, from
    its qkv weights and the normed tokens it attended over ((B*T, 1 + N, D)),
    without the [CLS] column: (B, T, heads, N)."""
    bt, length, dim = normed.shape
    heads = block.attn.num_heads
    head_dim = dim // heads
    qkv = normed @ block.attn.qkv.weight.T + block.attn.qkv.bias
    q = qkv[:, 0, :dim].reshape(bt, heads, head_dim)
    k = qkv[:, :, dim : 2 * dim].reshape(bt, length, heads, head_dim)
    logits = torch.einsum("bhc,blhc->bhl", q, k) / math.sqrt(head_dim)
    return logits.softmax(dim=-1)[:, :, 1:].reshape(b, t, heads, length - 1)


def test_patches_are_chosen_by_the_cls_attention_of_the_last_two_of_four_blocks(
    monkeypatch,
):
    """The selection map is the [CLS] attention averaged over the heads of the
    last two blocks, computed here by hand from each block's weights and inputs:
    not a uniform map, and not the first two blocks (with four blocks they
    differ; the registry's tiny model has only two)."""
    import modeling.models.rostfine as rostfine_module

    model = _tiny_rostfine(depth=4, patch_size=8, num_selected=4).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight.mul_(20)  # peaked attention, not near-uniform
    normed = []
    for block in model.blocks:
        block.norm1.register_forward_hook(lambda m, i, out: normed.append(out))
    captured = {}
    original = rostfine_module.patches_select

    def spy(patches, scores, k):
        captured["scores"], captured["k"] = scores, k
        return original(patches, scores, k)

    monkeypatch.setattr(rostfine_module, "patches_select", spy)
    b, t = 2, 3
    video = torch.randn(b, 3, t, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.branch_features(video)
        maps = [
            _cls_attention_by_hand(block, x, b, t)
            for block, x in zip(model.blocks, normed, strict=True)
        ]
    expected = torch.stack(maps[2:]).mean(dim=(0, 3))  # blocks 3 and 4, heads
    first_two = torch.stack(maps[:2]).mean(dim=(0, 3))
    assert captured["k"] == 4 and captured["scores"].shape == (b, t, 16)
    torch.testing.assert_close(captured["scores"], expected, rtol=1e-4, atol=1e-6)
    # The alternatives choose other patches, so the check above can tell them.
    top = expected.topk(4, dim=-1).indices.sort(dim=-1).values
    assert not torch.equal(top, first_two.topk(4, dim=-1).indices.sort(dim=-1).values)
    assert (expected.amax(-1) - expected.amin(-1)).min() > 0.01  # far from uniform
