"""TimeSformer with divided space-time attention (Bertasius et al., 2021).

Built from timm ViT components (``Attention``, ``Mlp``, ``PatchEmbed``); both
attentions run through ``F.scaled_dot_product_attention`` (flash attention on
GPU). Parameter names follow the original TimeSformer (``blocks.i.attn``,
``temporal_attn``, ``temporal_fc``, ``time_embed``), so timm ViT-B/16 and
TimeSformer checkpoints load by name.

Tokens are kept frame-major: (B, 1 + T*N, D) with patch tokens ordered (t, n).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, PatchEmbed, resample_abs_pos_embed
from timm.layers.attention import Attention
from torch import nn

from modeling.models.heads import GradeHead, GradeModel
from modeling.models.registry import register_model
from modeling.models.weights import (
    PRETRAINED,
    WeightsArg,
    state_dict_load,
    weights_resolve,
)

TEMPORAL_LAYOUTS = ("transpose", "frame_major")


def _attention(dim: int, num_heads: int, *, fused: bool = True) -> Attention:
    attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
    # fused: F.scaled_dot_product_attention (flash on GPU); else timm's explicit
    # softmax(q k^T) v, which is faster for the 8-frame temporal attention: flash
    # kernels work on 64-128 row tiles, so 8-token sequences waste most of them.
    attn.fused_attn = fused
    return attn


def cls_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention of the first ([CLS]) query over the other tokens.

    ``x`` is the normed block input (B, L, D); returns (B, heads, L - 1). Only
    the [CLS] row is computed, so the block itself keeps its fused attention.
    """
    b, n, _ = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim)
    q = attn.q_norm(qkv[:, :1, 0].transpose(1, 2))  # (B, H, 1, d)
    k = attn.k_norm(qkv[:, :, 1].transpose(1, 2))  # (B, H, L, d)
    weights = (q.float() * attn.scale) @ k.float().transpose(-2, -1)
    return weights.softmax(dim=-1)[:, :, 0, 1:]


def temporal_attention_frame_major(
    attn: Attention, x: torch.Tensor, num_frames: int
) -> torch.Tensor:
    """``attn`` across the T frames of each patch position, for normed patch
    tokens (B, T*N, D) kept in (t, n) order: the same result as moving the
    tokens to (n, t) order, attending and moving them back, without the two
    token transposes (the frame axis is contracted in place by einsum)."""
    b, length, _ = x.shape
    t = num_frames
    n = length // t
    qkv = attn.qkv(x).view(b, t, n, 3, attn.num_heads, attn.head_dim)
    q, k, v = qkv.unbind(3)  # (B, T, N, H, c) each
    q, k = attn.q_norm(q), attn.k_norm(k)
    scores = torch.einsum("bsnhc,btnhc->bnhst", q * attn.scale, k)
    weights = attn.attn_drop(scores.softmax(dim=-1))
    out = torch.einsum("bnhst,btnhc->bsnhc", weights, v).reshape(b, length, -1)
    return attn.proj_drop(attn.proj(attn.norm(out)))


class DividedBlock(nn.Module):
    """Temporal attention, then spatial attention, then MLP; all residual."""

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        drop_path: float,
        fused_temporal_attention: bool = False,
        temporal_layout: str = "transpose",
    ) -> None:
        super().__init__()
        if temporal_layout not in TEMPORAL_LAYOUTS:
            raise ValueError(
                f"temporal_layout {temporal_layout!r} is not one of {TEMPORAL_LAYOUTS}"
            )
        if temporal_layout == "frame_major" and fused_temporal_attention:
            raise ValueError(
                "temporal_layout 'frame_major' computes the temporal attention "
                "itself; it cannot be combined with fused_temporal_attention"
            )
        self.temporal_layout = temporal_layout
        self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_attn = _attention(dim, num_heads, fused=fused_temporal_attention)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self, x: torch.Tensor, num_frames: int, return_cls_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        b, length, d = x.shape
        t = num_frames
        n = (length - 1) // t
        cls, patches = x[:, :1], x[:, 1:]

        # Temporal attention: each patch position attends across the T frames.
        if self.temporal_layout == "frame_major":
            h = temporal_attention_frame_major(
                self.temporal_attn, self.temporal_norm1(patches), t
            )
        else:
            h = patches.view(b, t, n, d).transpose(1, 2).reshape(b * n, t, d)
            h = self.temporal_attn(self.temporal_norm1(h))
            h = h.view(b, n, t, d).transpose(1, 2).reshape(b, t * n, d)
        patches = patches + self.drop_path(self.temporal_fc(h))

        # Spatial attention: within each frame, with a copy of [CLS] per frame.
        s = torch.cat(
            [cls.expand(b, t, d).reshape(b * t, 1, d), patches.reshape(b * t, n, d)],
            dim=1,
        )
        s_normed = self.norm1(s)
        s = self.drop_path(self.attn(s_normed))
        cls_res = s[:, 0].view(b, t, d).mean(dim=1, keepdim=True)
        x = torch.cat([cls + cls_res, patches + s[:, 1:].reshape(b, t * n, d)], dim=1)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        if return_cls_attention:
            return x, cls_attention(self.attn, s_normed).view(b, t, -1, n)
        return x


class TimeSformer(GradeModel):
    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        num_frames: int = 8,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        dropout: float = 0.0,
        n_speed: int = 1,
        fused_temporal_attention: bool = False,
        temporal_layout: str = "transpose",
    ) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.patch_embed = PatchEmbed(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=3,
            embed_dim=embed_dim,
            strict_img_size=False,
        )
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            DividedBlock(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                drop_path=r,
                fused_temporal_attention=fused_temporal_attention,
                temporal_layout=temporal_layout,
            )
            for r in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.num_features = embed_dim
        self.head = GradeHead(in_features=embed_dim, n_speed=n_speed, dropout=dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        # As the original: the temporal residual of every block but the first
        # starts at zero. A ViT initialisation also zeroes time_embed.
        for block in list(self.blocks)[1:]:
            nn.init.zeros_(block.temporal_fc.weight)
            nn.init.zeros_(block.temporal_fc.bias)

    def tokens_embed(self, video: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Patchify and add embeddings: returns (B, 1 + T*N, D), T, N."""
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        x = self.patch_embed(frames)  # (B*T, N, D), row-major patches
        n, d = x.shape[1], x.shape[2]
        grid = (
            h // self.patch_embed.patch_size[0],
            w // self.patch_embed.patch_size[1],
        )
        pos = self.pos_embed
        if pos.shape[1] != n + 1:
            pos = resample_abs_pos_embed(pos, new_size=grid, num_prefix_tokens=1)
        time = self.time_embed
        if time.shape[1] != t:
            time = F.interpolate(time.transpose(1, 2), size=t, mode="nearest")
            time = time.transpose(1, 2)
        x = x.view(b, t, n, d) + pos[:, None, 1:] + time[:, :, None]
        cls = (self.cls_token + pos[:, :1]).expand(b, 1, d)
        return torch.cat([cls, x.reshape(b, t * n, d)], dim=1), t, n

    def forward_tokens(
        self, video: torch.Tensor, cls_attention_layers: int = 0
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Normed tokens (B, 1 + T*N, D) and the [CLS] attention maps
        (B, T, heads, N) of the last ``cls_attention_layers`` blocks."""
        x, t, _ = self.tokens_embed(video)
        maps = []
        first_with_map = len(self.blocks) - cls_attention_layers
        for i, block in enumerate(self.blocks):
            if i >= first_with_map:
                x, cls_map = block(x, t, return_cls_attention=True)
                maps.append(cls_map)
            else:
                x = block(x, t)
        return self.norm(x), maps

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.forward_tokens(video)
        return tokens[:, 0]


def _is_timesformer_state(state: dict[str, torch.Tensor]) -> bool:
    return any("temporal_attn" in key or "time_embed" in key for key in state)


def timesformer_state_from_vit(
    vit_state: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Map a timm ViT state dict onto TimeSformer names, as the original does:
    temporal attention and its norm copied from the spatial ones. ``temporal_fc``
    and ``time_embed`` are absent: the loader zeroes ``time_embed`` and keeps the
    zero-initialised ``temporal_fc`` (the first block's stays random, as the
    original)."""
    state = {}
    for key, value in vit_state.items():
        if key.startswith("head") or key.startswith("fc_norm"):
            continue
        state[key] = value
        if ".attn." in key:
            state[key.replace(".attn.", ".temporal_attn.")] = value.clone()
        if ".norm1." in key:
            state[key.replace(".norm1.", ".temporal_norm1.")] = value.clone()
    return state


def timesformer_weights_load(
    model: TimeSformer, state: dict[str, torch.Tensor], *, source: str
) -> None:
    """Load a ViT or TimeSformer state dict into ``model`` (head excluded)."""
    from_vit = not _is_timesformer_state(state)
    if not from_vit:
        state = {
            key.removeprefix("model."): value
            for key, value in state.items()
            if not key.removeprefix("model.").startswith("head")
        }
    else:
        state = timesformer_state_from_vit(state)
        with torch.no_grad():
            model.time_embed.zero_()
    own = model.state_dict()
    if "pos_embed" in state and state["pos_embed"].shape != own["pos_embed"].shape:
        grid = model.patch_embed.grid_size
        state["pos_embed"] = resample_abs_pos_embed(
            state["pos_embed"], new_size=grid, num_prefix_tokens=1
        )
    if "time_embed" in state and state["time_embed"].shape != own["time_embed"].shape:
        time = F.interpolate(
            state["time_embed"].transpose(1, 2), size=model.num_frames, mode="nearest"
        )
        state["time_embed"] = time.transpose(1, 2)
    unexpected = [key for key in state if key not in own]
    mismatched = [
        key for key in state if key in own and state[key].shape != own[key].shape
    ]
    if mismatched:
        raise ValueError(
            f"{source}: shapes differ for {mismatched[:5]}; build the model with the "
            "checkpoint's embed_dim / depth / num_heads / patch_size."
        )
    own_modules = tuple(getattr(model, "own_modules", ()))
    backbone_missing = [
        key
        for key in own
        if key not in state
        and not _may_stay_unset(key, from_vit=from_vit, own_modules=own_modules)
    ]
    if backbone_missing or unexpected:
        what = "is not a ViT/TimeSformer checkpoint of this size"
        if not backbone_missing and len(unexpected) < 0.5 * len(own):
            what = "holds tensors this model has no place for"
        raise ValueError(
            f"{source} {what}: missing {backbone_missing[:5]}, unexpected "
            f"{unexpected[:5]}."
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def _may_stay_unset(key: str, *, from_vit: bool, own_modules: tuple = ()) -> bool:
    """Our head is always new; a ViT has no temporal projection or time embedding;
    a model's ``own_modules`` (RoSTFine's branches) keep their initialisation
    unless the checkpoint has them."""
    if key.startswith("head.") or key.startswith(own_modules):
        return True
    return from_vit and (key == "time_embed" or ".temporal_fc." in key)


def _build_timesformer(
    cls: type[TimeSformer], *, model_name: str, weights: WeightsArg, **kwargs
) -> TimeSformer:
    path = weights_resolve(model_name=model_name, weights=weights)
    model = cls(**kwargs)
    if path is not None:
        timesformer_weights_load(model, state_dict_load(path), source=str(path))
    return model


TINY_TIMESFORMER = {
    "weights": "random",
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "img_size": 32,
    "patch_size": 16,
    "num_frames": 4,
}


@register_model("timesformer", tiny_kwargs=TINY_TIMESFORMER)
def timesformer(
    *,
    weights: WeightsArg = PRETRAINED,
    img_size: int = 224,
    patch_size: int = 16,
    num_frames: int = 8,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    drop_path_rate: float = 0.0,
    dropout: float = 0.0,
    n_speed: int = 1,
    fused_temporal_attention: bool = False,
    temporal_layout: str = "transpose",
) -> TimeSformer:
    """TimeSformer-B (divided space-time) initialised from a ViT-B/16 by default.

    ``weights``: "pretrained" (timm ViT-B/16 ImageNet from the local cache),
    a path to a timm ViT or TimeSformer checkpoint, or "random".
    ``fused_temporal_attention``: SDPA for the temporal attention too (spatial
    attention always uses it); off by default, as explicit attention is faster
    for short clips (see ``benchmarks/train_throughput.py``).
    ``temporal_layout``: "transpose" moves the tokens to (n, t) order for the
    temporal attention and back; "frame_major" attends across frames in place
    (``temporal_attention_frame_major``), the same outputs without the copies.
    """
    return _build_timesformer(
        TimeSformer,
        model_name="timesformer",
        weights=weights,
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        drop_path_rate=drop_path_rate,
        dropout=dropout,
        n_speed=n_speed,
        fused_temporal_attention=fused_temporal_attention,
        temporal_layout=temporal_layout,
    )
