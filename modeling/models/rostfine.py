"""RoSTFine (Fujii et al., WACV 2024): TimeSformer + fine-grained branches.

- Patch Selection Module: per frame, the top-K patch tokens by [CLS] attention
  averaged over the heads of the last two layers, gathered in their original
  (ascending) token order. The reference code gathered the wrong tokens; here
  the selected indices are sorted and ``torch.gather`` is applied to the patch
  axis of the same frame.
- Fine-grained spatial branch (eq. 6-8): for each frame, [CLS] followed by that
  frame's K selected tokens through L transformer blocks of H heads; the
  branch feature is the [CLS] output (averaged over the frames, then
  normalised). Temporal branch (eq. 9-11): [CLS] followed by all T*K selected
  tokens (frame embeddings added) through L blocks; the [CLS] output. Both
  start their [CLS] from the backbone's [CLS] output (``branch_inputs``).
- Defaults as the paper: L = 6 (``branch_depth``), H = 8 (``branch_heads``),
  K = 60 (``num_selected``), alpha = 1 (the paper compares 0 and 1). An extra
  residual that adds the global feature to each branch (this module's earlier
  form) is ``branch_residual``, off by default: it pulls the branches toward
  the global feature while the diversity loss pushes them apart.
- Three heads (global, spatial, temporal), each trained with its own loss; at
  inference their probabilities are averaged. ``forward`` returns the log of
  the averaged probabilities, so softmax(forward) is that average and softmax
  is applied once per head.
- Diversity loss (eq. 17-18): mean |cos| between the three branch features
  (``modeling.losses.diversity_loss``), times ``alpha``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from modeling.losses import diversity_loss
from modeling.models.heads import GradeHead, log_mean_probabilities
from modeling.models.registry import register_model
from modeling.models.timesformer import (
    PRETRAINED,
    TINY_TIMESFORMER,
    TimeSformer,
    WeightsArg,
    _build_timesformer,
)


def patches_select(
    patches: torch.Tensor, scores: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` patches per frame by score, kept in token order.

    patches (B, T, N, D), scores (B, T, N) -> selected (B, T, k, D) and the
    ascending indices (B, T, k) they were taken from.
    """
    if patches.shape[:3] != scores.shape:
        raise ValueError(
            f"Scores {tuple(scores.shape)} must match patches (B, T, N) = "
            f"{tuple(patches.shape[:3])}."
        )
    if not 0 < k <= patches.shape[2]:
        raise ValueError(f"k must be in 1..{patches.shape[2]}, got {k}.")
    index = scores.topk(k, dim=-1).indices.sort(dim=-1).values
    gather_index = index[..., None].expand(-1, -1, -1, patches.shape[-1])
    return patches.gather(2, gather_index), index


def branch_inputs(
    tokens: torch.Tensor,
    scores: torch.Tensor,
    k: int,
    num_frames: int,
    frame_embed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The token sequences the two branches receive.

    ``tokens`` (B, 1 + T*N, D) is the backbone output ([CLS], then the patches
    frame by frame), ``scores`` (B, T, N) the selection scores. Returns the
    spatial sequences (B*T, 1 + k, D): [CLS] then frame t's selected patches;
    the temporal sequence (B, 1 + T*k, D): [CLS] then every frame's selected
    patches, frame by frame, each plus its frame's ``frame_embed`` (1, T, 1, D)
    when given; and the selected indices (B, T, k).
    """
    b, _, d = tokens.shape
    cls = tokens[:, :1]
    patches = tokens[:, 1:].reshape(b, num_frames, -1, d)
    selected, index = patches_select(patches, scores, k)
    spatial = torch.cat(
        [cls.repeat_interleave(num_frames, dim=0), selected.reshape(-1, k, d)], dim=1
    )
    timed = selected if frame_embed is None else selected + frame_embed
    temporal = torch.cat([cls, timed.reshape(b, num_frames * k, d)], dim=1)
    return spatial, temporal, index


class RoSTFine(TimeSformer):
    # Parameters a ViT or TimeSformer checkpoint does not have: initialised
    # here, loaded only from a RoSTFine checkpoint.
    own_modules = (
        "spatial_blocks.",
        "spatial_norm.",
        "frame_embed",
        "temporal_blocks.",
        "temporal_norm.",
        "spatial_head.",
        "temporal_head.",
    )

    def __init__(
        self,
        *,
        num_selected: int = 60,
        alpha: float = 1.0,
        branch_depth: int = 6,
        branch_heads: int = 8,
        branch_residual: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        dim = self.num_features
        if dim % branch_heads:
            raise ValueError(
                f"branch_heads ({branch_heads}) must divide the width ({dim})."
            )
        n_speed = self.head.n_speed
        dropout = self.head.dropout.p
        self.num_selected = num_selected
        self.alpha = alpha
        self.branch_residual = branch_residual
        self.spatial_blocks = nn.Sequential(
            *[Block(dim, branch_heads, qkv_bias=True) for _ in range(branch_depth)]
        )
        self.spatial_norm = nn.LayerNorm(dim, eps=1e-6)
        self.frame_embed = nn.Parameter(torch.zeros(1, self.num_frames, 1, dim))
        nn.init.trunc_normal_(self.frame_embed, std=0.02)
        self.temporal_blocks = nn.Sequential(
            *[Block(dim, branch_heads, qkv_bias=True) for _ in range(branch_depth)]
        )
        self.temporal_norm = nn.LayerNorm(dim, eps=1e-6)
        self.spatial_head = GradeHead(in_features=dim, n_speed=n_speed, dropout=dropout)
        self.temporal_head = GradeHead(
            in_features=dim, n_speed=n_speed, dropout=dropout
        )

    def branch_features(self, video: torch.Tensor) -> list[torch.Tensor]:
        """Global, spatial and temporal features, each (B, D)."""
        tokens, maps = self.forward_tokens(video, cls_attention_layers=2)
        b, t = video.shape[0], video.shape[2]
        d = tokens.shape[-1]
        global_feature = tokens[:, 0]
        scores = torch.stack(maps).mean(dim=(0, 3))  # layers and heads -> (B, T, N)
        k = min(self.num_selected, scores.shape[-1])
        frame_embed = self.frame_embed
        if frame_embed.shape[1] != t:
            frame_embed = F.interpolate(
                frame_embed[:, :, 0].transpose(1, 2), size=t
            ).transpose(1, 2)[:, :, None]
        spatial_in, temporal_in, _ = branch_inputs(tokens, scores, k, t, frame_embed)

        spatial_cls = self.spatial_blocks(spatial_in)[:, 0].view(b, t, d)
        spatial = self.spatial_norm(spatial_cls.mean(dim=1))
        temporal = self.temporal_norm(self.temporal_blocks(temporal_in)[:, 0])
        if self.branch_residual:
            spatial, temporal = spatial + global_feature, temporal + global_feature
        return [global_feature, spatial, temporal]

    def branch_logits(
        self, features: list[torch.Tensor], speed: torch.Tensor | None
    ) -> list[torch.Tensor]:
        heads = (self.head, self.spatial_head, self.temporal_head)
        return [head(f, speed) for head, f in zip(heads, features, strict=True)]

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """The three branch features concatenated: (B, 3 * D)."""
        return torch.cat(self.branch_features(video), dim=1)

    def forward_head(
        self, features: torch.Tensor, speed: torch.Tensor | None = None
    ) -> torch.Tensor:
        return log_mean_probabilities(
            self.branch_logits(list(features.chunk(3, dim=1)), speed)
        )

    def training_outputs(
        self, video: torch.Tensor, speed: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Logits of the three heads (each trained with its own loss) and
        ``alpha`` times the diversity loss."""
        features = self.branch_features(video)
        logits = self.branch_logits(features, speed)
        return logits, self.alpha * diversity_loss(features)


@register_model(
    "rostfine",
    tiny_kwargs={
        **TINY_TIMESFORMER,
        "num_selected": 2,
        "branch_depth": 1,
        "branch_heads": 2,
    },
)
def rostfine(
    *,
    weights: WeightsArg = PRETRAINED,
    num_selected: int = 60,
    alpha: float = 1.0,
    branch_depth: int = 6,
    branch_heads: int = 8,
    branch_residual: bool = False,
    img_size: int = 224,
    patch_size: int = 16,
    num_frames: int = 8,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    drop_path_rate: float = 0.0,
    dropout: float = 0.0,
    n_speed: int = 1,
    temporal_layout: str = "transpose",
) -> RoSTFine:
    """RoSTFine on TimeSformer-B with the paper's defaults: ``num_selected``
    patches per frame (K = 60), ``branch_depth`` blocks (L = 6) of
    ``branch_heads`` heads (H = 8) per branch, ``alpha`` (1) on the diversity
    loss, ``branch_residual`` off. Weights as for ``timesformer`` (the branches
    start from their own initialisation unless the file is a RoSTFine's);
    ``temporal_layout`` as for ``timesformer``."""
    return _build_timesformer(
        RoSTFine,
        model_name="rostfine",
        weights=weights,
        num_selected=num_selected,
        alpha=alpha,
        branch_depth=branch_depth,
        branch_heads=branch_heads,
        branch_residual=branch_residual,
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        drop_path_rate=drop_path_rate,
        dropout=dropout,
        n_speed=n_speed,
        temporal_layout=temporal_layout,
    )
