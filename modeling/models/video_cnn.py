"""3D CNN baselines: R(2+1)D-18 (torchvision), X3D and SlowFast (pytorchvideo).

The source classifiers are cut off (pytorchvideo's X3D head ends in a Softmax,
the "softmax twice" fault of the reference code) and their fixed-size pooling
is replaced by global average pooling, so any clip length and size work.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video.resnet import (
    BasicBlock,
    Conv2Plus1D,
    R2Plus1dStem,
    VideoResNet,
)

# pytorchvideo imports fvcore, which calls torch.jit.script at import time: torch
# warns about it on every command. The warning is about fvcore's code, not ours,
# and there is no fvcore release without it.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    from pytorchvideo.models.x3d import create_x3d

from modeling.models.heads import GradeHead, GradeModel
from modeling.models.registry import register_model
from modeling.models.weights import (
    PRETRAINED,
    WeightsArg,
    backbone_load,
    state_dict_load,
    weights_resolve,
)


def _load(module: nn.Module, path: Path | None) -> None:
    if path is not None:
        backbone_load(module, state_dict_load(path), source=str(path))


R2PLUS1D_WIDTHS = (64, 128, 256, 512)


class NarrowR2Plus1D(VideoResNet):
    """torchvision's R(2+1)D with other stage widths (torchvision fixes 64..512).

    Same blocks, stem layout (the stem's middle width scaled as 45/64) and
    initialisation; only for random-init small configs, since no weights file
    has these shapes.
    """

    def __init__(self, *, layers: list[int], widths: tuple[int, ...]) -> None:
        nn.Module.__init__(self)
        mid = max(1, round(widths[0] * 45 / 64))
        self.inplanes = widths[0]
        self.stem = nn.Sequential(
            nn.Conv3d(
                3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False
            ),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, widths[0], (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        for i, (width, n) in enumerate(zip(widths, layers, strict=True)):
            layer = self._make_layer(
                BasicBlock, Conv2Plus1D, width, n, stride=1 if i == 0 else 2
            )
            setattr(self, f"layer{i + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


class R2Plus1D(GradeModel):
    def __init__(
        self,
        *,
        layers: list[int],
        widths: tuple[int, ...],
        weights_path: Path | None,
        n_speed: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if tuple(widths) == R2PLUS1D_WIDTHS:
            self.backbone = VideoResNet(
                block=BasicBlock,
                conv_makers=[Conv2Plus1D] * 4,
                layers=layers,
                stem=R2Plus1dStem,
            )
        elif weights_path is not None:
            raise ValueError(
                f"widths {tuple(widths)} fit no weights file: use weights='random'."
            )
        else:
            self.backbone = NarrowR2Plus1D(layers=layers, widths=tuple(widths))
        _load(self.backbone, weights_path)
        self.backbone.fc = nn.Identity()
        self.num_features = widths[-1]
        self.head = GradeHead(
            in_features=self.num_features, n_speed=n_speed, dropout=dropout
        )

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        return self.backbone(video)


@register_model("r2plus1d", tiny_kwargs={"tiny": True, "weights": "random"})
def r2plus1d(
    *,
    weights: WeightsArg = PRETRAINED,
    n_speed: int = 1,
    dropout: float = 0.0,
    tiny: bool = False,
    widths: tuple[int, ...] = R2PLUS1D_WIDTHS,
) -> R2Plus1D:
    """R(2+1)D-18 (``tiny=True``: one block per stage; other ``widths``, four
    stage widths, build a narrower random-init network)."""
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"widths must be four positive stage widths, got {widths}")
    layers = [1, 1, 1, 1] if tiny else [2, 2, 2, 2]
    path = weights_resolve(model_name="r2plus1d", weights=weights)
    return R2Plus1D(
        layers=layers,
        widths=widths,
        weights_path=path,
        n_speed=n_speed,
        dropout=dropout,
    )


def _strip_resnet_head(head: nn.Module) -> None:
    """Make a pytorchvideo ResNetBasicHead return pooled features, no classifier."""
    head.dropout = None
    head.proj = None
    head.activation = None
    head.output_pool = nn.AdaptiveAvgPool3d(1)


def _swish_to_silu(module: nn.Module) -> None:
    """pytorchvideo's Swish is a Python autograd Function (x * sigmoid(x)) that
    ONNX export cannot trace; nn.SiLU computes the same, fused, and exports."""
    from pytorchvideo.layers.swish import Swish

    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, Swish):
                setattr(parent, name, nn.SiLU())


class X3D(GradeModel):
    """X3D; ``input_size`` (optional) resizes frames inside the model first."""

    def __init__(
        self,
        *,
        width_factor: float,
        depth_factor: float,
        head_dim_out: int,
        input_size: int | None,
        weights_path: Path | None,
        n_speed: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.backbone = create_x3d(
            input_clip_length=8,
            input_crop_size=224,
            width_factor=width_factor,
            depth_factor=depth_factor,
            head_dim_out=head_dim_out,
        )
        _load(self.backbone, weights_path)
        _swish_to_silu(self.backbone)
        head = self.backbone.blocks[-1]
        head.pool.pool = nn.AdaptiveAvgPool3d(1)
        _strip_resnet_head(head)
        self.input_size = input_size
        self.num_features = head_dim_out
        self.head = GradeHead(
            in_features=head_dim_out, n_speed=n_speed, dropout=dropout
        )

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and video.shape[-1] != self.input_size:
            b, c, t, h, w = video.shape
            frames = video.transpose(1, 2).reshape(b * t, c, h, w)
            frames = F.interpolate(
                frames,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=False,
            )
            video = frames.view(b, t, c, self.input_size, self.input_size)
            video = video.transpose(1, 2)
        return self.backbone(video)


@register_model("x3d", tiny_kwargs={"tiny": True, "weights": "random"})
def x3d(
    *,
    weights: WeightsArg = PRETRAINED,
    n_speed: int = 1,
    dropout: float = 0.0,
    tiny: bool = False,
) -> X3D:
    """X3D-M (``tiny=True``: half depth, 64-d features)."""
    return X3D(
        width_factor=2.0,
        depth_factor=0.5 if tiny else 2.2,
        head_dim_out=64 if tiny else 2048,
        input_size=None,
        weights_path=weights_resolve(model_name="x3d", weights=weights),
        n_speed=n_speed,
        dropout=dropout,
    )


@register_model("clinic", tiny_kwargs={"tiny": True, "weights": "random"})
def clinic(
    *,
    weights: WeightsArg = "random",
    n_speed: int = 1,
    dropout: float = 0.0,
    input_size: int = 112,
    tiny: bool = False,
) -> X3D:
    """The clinic profile: an X3D-XS-sized network at 112 px, fast on 2 CPU cores.

    Frames are resized to ``input_size`` inside the model, so it takes the same
    224 px clips as every other model. Meant to be distilled from the TimeSformer
    (see ``modeling.distill``); random initialisation by default since no
    pretrained file matches its width.
    """
    return X3D(
        width_factor=1.0 if tiny else 2.0,
        depth_factor=0.5 if tiny else 2.2,
        head_dim_out=64 if tiny else 432,
        input_size=16 if tiny else input_size,
        weights_path=weights_resolve(model_name="clinic", weights=weights),
        n_speed=n_speed,
        dropout=dropout,
    )


class SlowFast(GradeModel):
    """SlowFast: the slow pathway sees every ``alpha``-th frame of the clip."""

    def __init__(
        self,
        *,
        model_depth: int,
        stem_dims: tuple[int, int],
        alpha: int,
        weights_path: Path | None,
        n_speed: int,
        dropout: float,
    ) -> None:
        super().__init__()
        from pytorchvideo.models.slowfast import create_slowfast

        self.backbone = create_slowfast(
            model_depth=model_depth,
            stem_dim_outs=stem_dims,
            slowfast_fusion_conv_stride=(alpha, 1, 1),
        )
        _load(self.backbone, weights_path)
        pool_block = self.backbone.blocks[-2]
        pool_block.pool = nn.ModuleList(
            [nn.AdaptiveAvgPool3d(1) for _ in pool_block.pool]
        )
        _strip_resnet_head(self.backbone.blocks[-1])
        self.alpha = alpha
        # Stage 4 of each pathway has 32 x its stem width (2048 + 256 for R50).
        self.num_features = 32 * (stem_dims[0] + stem_dims[1])
        self.head = GradeHead(
            in_features=self.num_features, n_speed=n_speed, dropout=dropout
        )

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        t = video.shape[2]
        if t % self.alpha:
            raise ValueError(
                f"SlowFast needs a frame count divisible by alpha={self.alpha}, "
                f"got {t}."
            )
        slow = video[:, :, :: self.alpha]
        return self.backbone([slow, video])


@register_model("slowfast", tiny_kwargs={"tiny": True, "weights": "random"})
def slowfast(
    *,
    weights: WeightsArg = PRETRAINED,
    n_speed: int = 1,
    dropout: float = 0.0,
    alpha: int = 4,
    tiny: bool = False,
) -> SlowFast:
    """SlowFast R50 (``tiny=True``: one bottleneck block per stage, 1/4 width)."""
    return SlowFast(
        model_depth=18 if tiny else 50,
        stem_dims=(16, 2) if tiny else (64, 8),
        alpha=alpha,
        weights_path=weights_resolve(model_name="slowfast", weights=weights),
        n_speed=n_speed,
        dropout=dropout,
    )
