"""Grade-distribution models, registered by name.

``create_model(name, **kwargs)`` builds one; ``list_models()`` names them;
``TINY_KWARGS[name]`` are small random-init settings (4 frames, 32 px) for
tests and smoke runs. Every model maps ``(video (B, 3, T, H, W) float,
speed (B, n_speed) float)`` to 5 logits, never softmaxed, and exposes
``forward_features(video) -> (B, D)`` and ``forward_head(features, speed)``.
``rostfine`` also has ``training_outputs(video, speed) -> (3 logits, aux loss)``.

Pretrained weights are the default for the paper backbones and are read only
from local files (see ``modeling.models.weights``); pass ``weights="random"``
for random initialisation.
"""

from modeling.models import resnet_image, rostfine, timesformer, video_cnn
from modeling.models.registry import (
    TINY_KWARGS,
    create_model,
    list_models,
    register_model,
)

__all__ = [
    "TINY_KWARGS",
    "create_model",
    "list_models",
    "register_model",
    "resnet_image",
    "rostfine",
    "timesformer",
    "video_cnn",
]
