"""Batch preparation on the device: frame sampling, resize, augmentation, normalise.

Everything here is a handful of tensor ops on a whole batch (no per-clip Python
loops, no decoding), so the accelerator is never waiting for data. The output is
what every model takes: float (B, 3, T, S, S), normalised as the model's weights
expect (``NORMALIZATIONS``; ``modeling.models.weights.model_normalization``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from modeling.config import AugmentConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Input normalisations by the origin of a model's standard weights (mean, std per
# RGB channel on [0, 1] pixels): torchvision ImageNet models; torchvision video
# models (Kinetics-400 statistics of its video transforms); pytorchvideo's
# Kinetics models; timm's augreg ViTs (mean = std = 0.5).
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "kinetics_torchvision": (
        (0.43216, 0.394666, 0.37645),
        (0.22803, 0.22145, 0.216989),
    ),
    "kinetics": ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
_LUMA = (0.299, 0.587, 0.114)


def frame_indices(
    n_source: int,
    n_frames: int,
    *,
    batch: int,
    jitter: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(batch, n_frames) source-frame indices, evenly spaced (8 of 16 -> 0, 2, ..14).

    With ``jitter`` each clip starts at a random offset within one stride, so
    training sees every frame while keeping the spacing.
    """
    stride = n_source / n_frames
    base = torch.floor(torch.arange(n_frames, device=device) * stride).long()
    idx = base.expand(batch, n_frames)
    if jitter and stride > 1:
        max_offset = math.floor(stride)
        offset = torch.randint(
            0, max_offset, (batch, 1), generator=generator, device=device
        )
        idx = idx + offset
    return idx.clamp_max(n_source - 1)


def batch_gather(
    videos: torch.Tensor,
    clip_idx: torch.Tensor,
    frame_idx: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """uint8 (B, T', H, W, C) on ``device`` from the dataset tensor (N, T, H, W, C).

    When the dataset lives on the device this is one gather there; otherwise the
    gather runs on the host and the (small) result is copied asynchronously.
    """
    if videos.device.type == device.type:
        return videos[clip_idx.to(device)[:, None], frame_idx.to(device)]
    frames = videos[clip_idx.cpu()[:, None], frame_idx.cpu()]
    if device.type == "cuda":
        return frames.pin_memory().to(device, non_blocking=True)
    return frames.to(device)


def _rotation_thetas(
    batch: int,
    cfg: AugmentConfig,
    generator: torch.Generator | None,
    device: torch.device,
) -> torch.Tensor:
    angle = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * (
        math.radians(cfg.rotation_degrees)
    )
    cos, sin = torch.cos(angle), torch.sin(angle)
    flip = torch.ones(batch, device=device)
    if cfg.hflip:
        coin = torch.rand(batch, generator=generator, device=device) < 0.5
        flip = torch.where(coin, -flip, flip)
    zero = torch.zeros(batch, device=device)
    row0 = torch.stack([cos * flip, -sin, zero], dim=1)
    row1 = torch.stack([sin * flip, cos, zero], dim=1)
    return torch.stack([row0, row1], dim=1)  # (B, 2, 3)


def _uniform_factor(
    batch: int, spread: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    u = torch.rand(batch, 1, 1, 1, 1, generator=generator, device=device)
    return 1 + (u * 2 - 1) * spread


def _colour_jitter(
    x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """Brightness, contrast, saturation; one factor per clip. x: (B, C, T, H, W)."""
    b, device = x.shape[0], x.device
    luma = torch.tensor(_LUMA, device=device).view(1, 3, 1, 1, 1)
    if cfg.brightness > 0:
        x = x * _uniform_factor(b, cfg.brightness, generator, device)
    if cfg.contrast > 0:
        mean = (x * luma).sum(1, keepdim=True).mean(dim=(3, 4), keepdim=True)
        x = (x - mean) * _uniform_factor(b, cfg.contrast, generator, device) + mean
    if cfg.saturation > 0:
        gray = (x * luma).sum(1, keepdim=True)
        x = (x - gray) * _uniform_factor(b, cfg.saturation, generator, device) + gray
    return x.clamp(0, 1)


def batch_prepare(
    frames: torch.Tensor,
    *,
    size: int,
    augment: AugmentConfig | None = None,
    generator: torch.Generator | None = None,
    normalization: str = "imagenet",
) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> normalised float (B, C, T, size, size).

    ``normalization`` names the (mean, std) of ``NORMALIZATIONS``.

    Resize and (when ``augment`` is given and enabled) rotation/flip happen in one
    ``grid_sample`` per frame, with the same transform for every frame of a clip;
    eval uses the identity transform, so train and eval resample alike.
    """
    if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(
            "batch_prepare: expected uint8 frames (B, T, H, W, 3), got "
            f"{frames.dtype} {tuple(frames.shape)}"
        )
    b, t, h, w, c = frames.shape
    device = frames.device
    x = frames.permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w).float().div_(255)
    use_aug = augment is not None and augment.enabled
    if use_aug:
        theta = _rotation_thetas(b, augment, generator, device)
    else:
        theta = torch.eye(2, 3, device=device).expand(b, 2, 3)
    theta = theta.repeat_interleave(t, dim=0)
    grid = F.affine_grid(theta, [b * t, c, size, size], align_corners=False)
    x = F.grid_sample(
        x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    x = x.reshape(b, t, c, size, size).permute(0, 2, 1, 3, 4)
    if use_aug:
        x = _colour_jitter(x, augment, generator)
    try:
        mean_values, std_values = NORMALIZATIONS[normalization]
    except KeyError:
        raise ValueError(
            f"unknown normalization {normalization!r}; choose one of "
            f"{', '.join(NORMALIZATIONS)}"
        ) from None
    mean = torch.tensor(mean_values, device=device).view(1, 3, 1, 1, 1)
    std = torch.tensor(std_values, device=device).view(1, 3, 1, 1, 1)
    return ((x - mean) / std).contiguous()
