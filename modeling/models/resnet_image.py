"""The papers' image baseline: a 2D ResNet-50 on single frames.

Each frame is scored on its own and the per-frame logits are averaged. Because
the head is linear, averaging per-frame logits equals applying the head to the
frame-averaged features, so ``forward_features`` returns the mean per-frame
feature (B, 2048) and the model keeps the (B, 5) logits contract with softmax
applied once, by the caller. (Averaging per-frame *probabilities* would need a
softmax inside the model; we chose logits to keep "softmax once".)

``per_frame=True`` trains every frame as a sample of its own
(``training_outputs`` gives one head output per frame, each trained with the
loss against the clip's distribution), and ``forward`` returns the log of the
frame-averaged probabilities (so softmax(forward) is that average, as for
RoSTFine's heads): one distribution per clip, what a clip is served.

``score_frames=True`` (with ``per_frame``) is the image baseline's protocol in
MERSV: at evaluation every frame is a prediction of its own, scored against the
clip's distribution (``frame_outputs``; ``modeling.training.evaluate`` with
``frames=True`` scores each of a clip's source frames). Without it, a per-frame
model is scored on its clip-averaged probabilities, which can only lower EMD
(EMD is convex in the prediction), so that variant carries its own name in the
comparison (``per_frame_mean``).
"""

from __future__ import annotations

import torch
from timm.models import resnet as timm_resnet
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from modeling.models.heads import GradeHead, GradeModel, log_mean_probabilities
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
        self,
        *,
        backbone: nn.Module,
        num_features: int,
        n_speed: int,
        dropout: float,
        per_frame: bool = False,
        score_frames: bool = False,
    ) -> None:
        super().__init__()
        if score_frames and not per_frame:
            raise ValueError(
                "score_frames scores the frames of a per-frame model; set "
                "per_frame=True too."
            )
        self.per_frame = per_frame
        self.score_frames = score_frames
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.num_features = num_features
        self.head = GradeHead(
            in_features=num_features, n_speed=n_speed, dropout=dropout
        )

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, num_features): each frame through the backbone on its own."""
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        return self.backbone(frames).view(b, t, -1)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        return self.frame_features(video).mean(dim=1)

    def forward(
        self, video: torch.Tensor, speed: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not self.per_frame:
            return super().forward(video, speed)
        return log_mean_probabilities(self._frame_logits(video, speed))

    def _frame_logits(self, video, speed) -> list[torch.Tensor]:
        features = self.frame_features(video)
        return [self.head(features[:, i], speed) for i in range(features.shape[1])]

    def frame_outputs(
        self, video: torch.Tensor, speed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, 5) logits: each frame's own prediction (the per-frame head)."""
        return torch.stack(self._frame_logits(video, speed), dim=1)

    def training_outputs(
        self, video: torch.Tensor, speed: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-frame mode: one output per frame, each a training sample with the
        clip's target (the loss is averaged over them); no auxiliary loss."""
        if not self.per_frame:
            return [super().forward(video, speed)], video.new_zeros(())
        return self._frame_logits(video, speed), video.new_zeros(())


@register_model("resnet_image", tiny_kwargs={"tiny": True, "weights": "random"})
def resnet_image(
    *,
    weights: WeightsArg = PRETRAINED,
    n_speed: int = 1,
    dropout: float = 0.0,
    tiny: bool = False,
    width: int = 64,
    per_frame: bool = False,
    score_frames: bool = False,
) -> ResNetImage:
    """ResNet-50 per frame (``tiny=True``: one BasicBlock per stage, 512 features;
    ``width`` sets a tiny network's first stage, doubled per stage: 16 gives
    128 features and 1/16 of the parameters). ``per_frame``: train on every frame
    as its own sample and average the frames' probabilities instead of the
    logits; ``score_frames`` (with ``per_frame``): evaluate every frame as its
    own prediction (MERSV's protocol)."""
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
        backbone=backbone,
        num_features=num_features,
        n_speed=n_speed,
        dropout=dropout,
        per_frame=per_frame,
        score_frames=score_frames,
    )
