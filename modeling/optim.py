"""The optimiser and learning-rate schedule of ``optim`` (SGD or AdamW; warmup,
then constant or cosine)."""

from __future__ import annotations

import math

import torch
from torch import nn

from modeling.config import Config


def optimizer_make(
    model: nn.Module, cfg: Config
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "sgd":
        opt = torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
        )
    else:
        opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)

    def factor(epoch: int) -> float:
        if epoch < o.warmup_epochs:
            return (epoch + 1) / (o.warmup_epochs + 1)
        if o.scheduler == "cosine":
            span = max(1, o.epochs - o.warmup_epochs)
            return 0.5 * (1 + math.cos(math.pi * (epoch - o.warmup_epochs) / span))
        return 1.0

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
