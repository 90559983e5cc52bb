"""Self-describing checkpoints: a folder with two files.

    <dir>/model.safetensors   the weights
    <dir>/checkpoint.json     model name and kwargs, resolved config, fold, epoch,
                              metrics, speed standardisation, input format

Loading needs nothing else: ``checkpoint_load(dir)`` rebuilds the model from the
registry with random initialisation and then loads the weights (no download).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from modeling.augment import NORMALIZATIONS
from modeling.config import Config, config_from_dict, config_to_dict
from modeling.data import SpeedScaler
from modeling.models.weights import SAFETENSORS_KEY, normalization_origin

CHECKPOINT_FORMAT = "spermgrade-checkpoint"
CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing files or does not describe a model."""


def model_create(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model (imported lazily: the registry pulls in timm)."""
    from modeling.models import create_model

    return create_model(name, **kwargs)


def checkpoint_save(
    path: str | Path,
    *,
    model: nn.Module,
    cfg: Config,
    n_speed: int,
    scaler: SpeedScaler,
    fold: int,
    epoch: int,
    metrics: dict,
    dataset_sha256: str = "",
) -> Path:
    """Write weights and metadata; ``dataset_sha256`` is the training data's
    ``manifest_sha256`` (``modeling.manifest``), its identity."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    normalization, origin = normalization_origin(
        cfg.model.name, cfg.data.normalization, cfg.model.kwargs.get("weights")
    )
    # The weights file carries its input statistics, so training from it later
    # (model.kwargs.weights) normalises as these weights were trained.
    save_model(
        model, str(out / WEIGHTS_FILE), metadata={SAFETENSORS_KEY: normalization}
    )
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": cfg.model.name,
            "kwargs": {**cfg.model.kwargs, "n_speed": n_speed},
        },
        "input": {
            "layout": "video float (B, 3, T, H, W): RGB on [0, 1], then "
            "(x - mean) / std per channel; speed float (B, n_speed), "
            "standardised with speed_scaler",
            "n_frames": cfg.data.n_frames,
            "size": cfg.data.size,
            "normalization": normalization,
            "normalization_from": origin,
            "mean": list(NORMALIZATIONS[normalization][0]),
            "std": list(NORMALIZATIONS[normalization][1]),
        },
        "output": "logits (B, 5) over grades A..E; apply softmax once",
        "speed_scaler": scaler.to_dict(),
        "fold": fold,
        "epoch": epoch,
        "metrics": metrics,
        "dataset": {"manifest_sha256": dataset_sha256},
        "config": config_to_dict(cfg),
        "torch_version": torch.__version__,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def checkpoint_meta(path: str | Path) -> dict:
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(
            f"{meta_path} is missing; pass a checkpoint folder written by "
            "`python -m modeling train` (e.g. OUT/fold_0/checkpoint)"
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{meta_path} is not a {CHECKPOINT_FORMAT} file")
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{folder / WEIGHTS_FILE} is missing")
    meta["path"] = str(folder)
    return meta


def checkpoint_load(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict, Config, SpeedScaler]:
    """(model in eval mode, metadata, resolved config, speed scaler)."""
    meta = checkpoint_meta(path)
    kwargs = dict(meta["model"]["kwargs"])
    kwargs["weights"] = "random"  # the saved weights replace any initialisation
    model = model_create(meta["model"]["name"], **kwargs)
    load_model(model, str(Path(meta["path"]) / WEIGHTS_FILE), device=str(device))
    model.to(device).eval()
    cfg = config_from_dict(meta["config"])
    # Predict as it was trained: checkpoints from before per-model
    # normalisation name none and were trained on ImageNet statistics.
    cfg.data.normalization = meta["input"].get("normalization", "imagenet")
    if cfg.runtime.amp == "bf16-pure":
        # The model above is float32 (the bf16 weights cast up): serve it so.
        cfg.runtime.amp = "auto"
    return model, meta, cfg, SpeedScaler.from_dict(meta["speed_scaler"])
