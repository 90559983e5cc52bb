"""RoSTFine's patch selection and branch inputs, pinned where mutation testing found
them loose (docs/mutation.md): the bounds on k, the error text, the frame
embeddings of the temporal branch, and which token each branch feature is."""

import pytest
import torch

from modeling.models import TINY_KWARGS, create_model
from modeling.models.rostfine import branch_inputs, patches_select


def _patches(b: int, t: int, n: int, d: int) -> torch.Tensor:
    # patch n of frame t holds 10 * t + n in every channel
    values = (10 * torch.arange(t)[:, None] + torch.arange(n)[None, :]).float()
    return values[None, :, :, None].expand(b, t, n, d).clone()


def test_k_may_be_one_or_every_patch_even_when_wider_than_the_feature_width():
    patches = _patches(1, 2, 4, 2)  # N = 4 patches of width D = 2
    scores = torch.tensor([[[0.1, 0.4, 0.3, 0.2], [0.9, 0.1, 0.0, 0.5]]])
    selected, index = patches_select(patches, scores, 4)
    assert torch.equal(index, torch.tensor([[[0, 1, 2, 3], [0, 1, 2, 3]]]))
    assert torch.equal(selected, patches)
    selected, index = patches_select(patches, scores, 1)
    assert torch.equal(index, torch.tensor([[[1], [0]]]))
    assert torch.equal(selected[..., 0], torch.tensor([[[1.0], [10.0]]]))


def test_k_of_zero_is_refused():
    with pytest.raises(ValueError, match=r"k must be in 1\.\.4, got 0\."):
        patches_select(torch.zeros(1, 2, 4, 3), torch.zeros(1, 2, 4), 0)


def test_scores_of_the_wrong_shape_are_refused_naming_both_shapes():
    message = r"Scores \(1, 2, 3\) must match patches \(B, T, N\) = \(1, 2, 4\)\."
    with pytest.raises(ValueError, match=message):
        patches_select(torch.zeros(1, 2, 4, 5), torch.zeros(1, 2, 3), 2)


def test_the_temporal_sequence_adds_each_frames_embedding_to_its_patches():
    b, t, n, d, k = 1, 2, 3, 2, 2
    patches = _patches(b, t, n, d)
    tokens = torch.cat([torch.full((b, 1, d), -1.0), patches.reshape(b, t * n, d)], 1)
    scores = torch.tensor([[[0.9, 0.0, 0.8], [0.0, 0.7, 0.6]]])
    frame_embed = torch.tensor([100.0, 200.0])[None, :, None, None].expand(1, t, 1, d)
    spatial, temporal, index = branch_inputs(tokens, scores, k, t, frame_embed)
    assert torch.equal(index, torch.tensor([[[0, 2], [1, 2]]]))
    # [CLS], then frame 0's patches 0 and 2 (+100), frame 1's 1 and 2 (+200)
    expected = torch.tensor([-1.0, 100.0, 102.0, 211.0, 212.0])
    assert torch.equal(temporal[0, :, 0], expected)
    assert torch.equal(temporal[0, :, 1], expected)
    # the spatial sequences carry no frame embedding
    assert torch.equal(spatial[:, :, 0], torch.tensor([[-1.0, 0, 2], [-1.0, 11, 12]]))


@pytest.mark.parametrize("frames", [1, 2, 4])
def test_branch_features_are_the_cls_outputs_of_the_backbone_and_both_branches(
    frames,
):
    """Global: the backbone's [CLS]; spatial: the normed frame mean of the spatial
    blocks' [CLS] outputs; temporal: the normed [CLS] output of the temporal
    blocks. The model is built for 4 frames: with fewer, the frame embeddings
    are resampled to the clip's frames by nearest neighbour (frames 0 and 2 for
    2 frames, frame 0 for 1)."""
    torch.manual_seed(0)
    model = create_model("rostfine", **TINY_KWARGS["rostfine"]).eval()
    with torch.no_grad():
        model.frame_embed.copy_(torch.randn_like(model.frame_embed) * 5)
    video = torch.randn(2, 3, frames, 32, 32)
    with torch.no_grad():
        features = model.branch_features(video)
        tokens, maps = model.forward_tokens(video, cls_attention_layers=2)
        scores = torch.stack(maps).mean(dim=(0, 3))
        kept = {1: [0], 2: [0, 2], 4: [0, 1, 2, 3]}[frames]
        frame_embed = model.frame_embed[:, kept]
        spatial_in, temporal_in, _ = branch_inputs(
            tokens, scores, model.num_selected, frames, frame_embed
        )
        spatial_cls = model.spatial_blocks(spatial_in)[:, 0].view(2, frames, -1)
        spatial = model.spatial_norm(spatial_cls.mean(dim=1))
        temporal = model.temporal_norm(model.temporal_blocks(temporal_in)[:, 0])
    assert torch.allclose(features[0], tokens[:, 0])
    assert torch.allclose(features[1], spatial, atol=1e-6)
    assert torch.allclose(features[2], temporal, atol=1e-6)


def test_forward_tokens_computes_no_attention_map_unless_asked():
    torch.manual_seed(0)
    model = create_model("rostfine", **TINY_KWARGS["rostfine"]).eval()
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        tokens, maps = model.forward_tokens(video)
        tokens_with_maps, two_maps = model.forward_tokens(video, cls_attention_layers=2)
    assert maps == []
    assert len(two_maps) == 2
    assert torch.equal(tokens, tokens_with_maps)
