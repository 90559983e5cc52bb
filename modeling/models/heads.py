"""The one grade head every model shares, and the model base class.

Every model maps ``(video, speed)`` to 5 logits. Softmax is never applied here:
the trainer and the losses apply it exactly once.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from modeling.grades import N_GRADES as NUM_GRADES


class GradeHead(nn.Module):
    """A linear layer over [video features, speed features] giving 5 logits.

    Speed enters through a small embedding (linear layer + GELU); it is
    expected standardised (z-scored on the training split) by the caller.
    ``n_speed=0`` builds a head that ignores speed.
    """

    def __init__(
        self,
        *,
        in_features: int,
        n_speed: int = 1,
        speed_dim: int = 16,
        num_classes: int = NUM_GRADES,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_speed < 0:
            raise ValueError(f"n_speed must be >= 0, got {n_speed}.")
        self.in_features = in_features
        self.n_speed = n_speed
        self.speed_embed = (
            nn.Sequential(nn.Linear(n_speed, speed_dim), nn.GELU())
            if n_speed > 0
            else None
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(
            in_features + (speed_dim if n_speed > 0 else 0), num_classes
        )

    def forward(
        self, features: torch.Tensor, speed: torch.Tensor | None
    ) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.in_features:
            raise ValueError(
                f"Expected features of shape (B, {self.in_features}), "
                f"got {tuple(features.shape)}."
            )
        parts = [self.dropout(features)]
        if self.speed_embed is not None:
            speed = speed_check(speed, n_speed=self.n_speed, batch=features.shape[0])
            parts.append(self.speed_embed(speed.to(features.dtype)))
        return self.fc(torch.cat(parts, dim=1))


def log_mean_probabilities(logits: list[torch.Tensor]) -> torch.Tensor:
    """log(mean_i softmax(logits_i)): several heads' (or frames') outputs as one
    (B, 5) output whose softmax is their averaged probability, so softmax is
    still applied once, by the caller."""
    log_probs = torch.stack([torch.log_softmax(x.float(), dim=-1) for x in logits])
    return torch.logsumexp(log_probs, dim=0) - math.log(len(logits))


def speed_check(
    speed: torch.Tensor | None, *, n_speed: int, batch: int
) -> torch.Tensor:
    """Return ``speed`` as (B, n_speed), raising a clear error for other shapes."""
    if speed is None:
        raise ValueError(
            f"This model was built with n_speed={n_speed}: pass speed of shape "
            f"(B, {n_speed}), or build it with n_speed=0."
        )
    if speed.ndim == 1 and n_speed == 1:
        speed = speed[:, None]
    if speed.shape != (batch, n_speed):
        raise ValueError(
            f"Expected speed of shape ({batch}, {n_speed}), got {tuple(speed.shape)}."
        )
    return speed


def video_check(video: torch.Tensor) -> None:
    """Raise a clear error unless ``video`` is a float (B, 3, T, H, W) tensor."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(
            f"Expected video of shape (B, 3, T, H, W), got {tuple(video.shape)}."
        )
    if not video.is_floating_point():
        raise ValueError(
            f"Expected a normalised float video, got dtype {video.dtype}; convert "
            "uint8 frames to float and normalise them first."
        )


class GradeModel(nn.Module):
    """Base class: ``forward(video, speed) = forward_head(forward_features(video))``.

    Subclasses set ``self.num_features`` and ``self.head`` and implement
    ``forward_features(video) -> (B, num_features)``.
    """

    num_features: int
    head: nn.Module

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(
        self, features: torch.Tensor, speed: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.head(features, speed)

    def forward(
        self, video: torch.Tensor, speed: torch.Tensor | None = None
    ) -> torch.Tensor:
        video_check(video)
        return self.forward_head(self.forward_features(video), speed)
