"""Losses between predicted and panel grade distributions (pure PyTorch).

Every distribution loss takes ``pred`` and ``target`` of shape (B, 5): probabilities
that sum to one along the last axis. ``pred`` is already a softmax output; models
return logits and the trainer applies softmax exactly once before calling a loss.
Each loss returns the mean over the batch (a scalar); the ``*_per_sample`` forms
return shape (B,).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

# Clamp inside logarithms only: a zero probability then contributes 0 * log(eps) = 0
# (and a finite gradient), never NaN or inf.
EPS = 1e-8

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_pair(pred: torch.Tensor, target: torch.Tensor, *, name: str) -> None:
    if pred.ndim != 2:
        raise ValueError(
            f"{name}: expected pred of shape (batch, n_grades), got {tuple(pred.shape)}"
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
            "must have the same shape (batch, n_grades)"
        )


def emd_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared earth mover's distance, eq. 6 of Nakagawa et al. (IEEE Access 2024).

    EMD(p, q) = 1/N * sum_k (CDF_p(k) - CDF_q(k))^2 over the N = 5 ordered grades,
    i.e. the mean over bins of squared CDF differences, without a square root (the
    r = 2 form of Hou et al. without the 1/r power; the last bin always contributes 0).
    """
    _check_pair(pred, target, name="emd")
    diff = torch.cumsum(pred, dim=-1) - torch.cumsum(target, dim=-1)
    return diff.pow(2).mean(dim=-1)


def mse_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over bins of squared probability differences."""
    _check_pair(pred, target, name="mse")
    return (pred - target).pow(2).mean(dim=-1)


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return (p * (torch.log(p.clamp_min(EPS)) - torch.log(q.clamp_min(EPS)))).sum(-1)


def jsd_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in nats (natural log), in [0, ln 2]."""
    _check_pair(pred, target, name="jsd")
    mid = 0.5 * (pred + target)
    return 0.5 * _kl(pred, mid) + 0.5 * _kl(target, mid)


def ce_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft-target cross entropy -sum_k target_k * log(pred_k), in nats."""
    _check_pair(pred, target, name="ce")
    return -(target * torch.log(pred.clamp_min(EPS))).sum(dim=-1)


def emd_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return emd_per_sample(pred, target).mean()


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return mse_per_sample(pred, target).mean()


def jsd_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return jsd_per_sample(pred, target).mean()


def ce_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ce_per_sample(pred, target).mean()


LOSSES: dict[str, LossFn] = {
    "emd": emd_loss,
    "mse": mse_loss,
    "jsd": jsd_loss,
    "ce": ce_loss,
}


def loss_get(name: str) -> LossFn:
    """The distribution loss called ``name`` (one of emd, mse, jsd, ce)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(
            f"unknown loss {name!r}; choose one of {', '.join(sorted(LOSSES))}"
        ) from None


def diversity_loss(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Orthogonality (diversity) loss between branch features, as in RoSTFine.

    ``features`` is a list of at least two tensors of shape (B, D) (e.g. the global,
    spatial and temporal branch features). Each feature vector is L2-normalised and
    the loss is the mean, over the batch and over every pair of branches, of the
    absolute cosine similarity |cos| (Fujii et al., eq. 17-18): 0 when the
    branches are orthogonal, 1 when parallel or opposite. RoSTFine uses this one.
    """
    if len(features) < 2:
        raise ValueError(
            f"diversity_loss: needs at least two feature tensors, got {len(features)}"
        )
    first = features[0]
    for i, f in enumerate(features):
        if f.ndim != 2 or f.shape != first.shape:
            raise ValueError(
                "diversity_loss: every feature tensor must have the same shape "
                f"(batch, dim); tensor 0 is {tuple(first.shape)}, "
                f"tensor {i} is {tuple(f.shape)}"
            )
    unit = torch.stack([F.normalize(f.float(), dim=-1, eps=EPS) for f in features], 1)
    gram = unit @ unit.transpose(1, 2)  # (B, n, n) cosine similarities
    n = len(features)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=gram.device)
    return gram.abs()[:, off_diagonal].mean()
