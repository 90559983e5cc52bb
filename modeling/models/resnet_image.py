"""The papers' image baseline: a 2D ResNet-50 on single frames.

Each frame is scored on its own and the per-frame logits are averaged. Because
the head is linear, averaging per-frame logits equals applying the head to the
frame-averaged features, so ``forward_features`` returns the mean per-frame
feature (B, 2048) and the model keeps the (B, 5) logits contract with softmax
applied once, by the caller. (Averaging per-frame *probabilities* would need a
softmax inside the model; we chose logits to keep "softmax once".)
"""

from __future__ import annotations

import torch
from timm.models import resnet as timm_resnet
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from modeling.models.heads import GradeHead, GradeModel
from modeling.models.registry import register_model
from modeling.models.weights import (
    PRETRAINED,
    WeightsArg,
    backbone_load,
    state_dict_load,
    weights_resolve,
)


class ResNetImage(GradeModel):
    def __init__(
        self, *, backbone: nn.Module, num_features: int, n_speed: int, dropout: float
    ) -> None:
        super().__init__()
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.num_features = num_features
        self.head = GradeHead(
            in_features=num_features, n_speed=n_speed, dropout=dropout
        )

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        return self.backbone(frames).view(b, t, -1).mean(dim=1)


@register_model("resnet_image", tiny_kwargs={"tiny": True, "weights": "random"})
def resnet_image(
    *,
    weights: WeightsArg = PRETRAINED,
    n_speed: int = 1,
    dropout: float = 0.0,
    tiny: bool = False,
    width: int = 64,
) -> ResNetImage:
    """ResNet-50 per frame (``tiny=True``: one BasicBlock per stage, 512 features;
    ``width`` sets a tiny network's first stage, doubled per stage: 16 gives
    128 features and 1/16 of the parameters)."""
    path = weights_resolve(model_name="resnet_image", weights=weights)
    if width != 64 and not tiny:
        raise ValueError("width applies to the tiny ResNet only (tiny=True).")
    if tiny and width != 64:
        backbone = timm_resnet.ResNet(
            timm_resnet.BasicBlock,
            (1, 1, 1, 1),
            channels=(width, 2 * width, 4 * width, 8 * width),
            stem_width=width,
            num_classes=0,
        )
        num_features = 8 * width
    elif tiny:
        backbone, num_features = ResNet(BasicBlock, [1, 1, 1, 1]), 512
    else:
        backbone, num_features = ResNet(Bottleneck, [3, 4, 6, 3]), 2048
    if path is not None:
        backbone_load(backbone, state_dict_load(path), source=str(path))
    return ResNetImage(
        backbone=backbone, num_features=num_features, n_speed=n_speed, dropout=dropout
    )
