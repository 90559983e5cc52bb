"""Where and how training runs: the device, bf16 autocast or pure bf16, and
``torch.compile`` in the configured mode (``Config.runtime``)."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from modeling.config import Config


def device_resolve(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"runtime.device is {name!r} but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def autocast(cfg: Config, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA by default (``runtime.amp``), nothing on CPU; none
    for "bf16-pure", whose weights and inputs are bf16 already."""
    amp = cfg.runtime.amp
    if amp in ("off", "bf16-pure") or (amp == "auto" and device.type != "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def compute_dtype(cfg: Config) -> torch.dtype:
    """The dtype of the model's weights and inputs: bf16 for "bf16-pure"."""
    return torch.bfloat16 if cfg.runtime.amp == "bf16-pure" else torch.float32


def inductor_workaround() -> None:
    """torch 2.11's inductor fails an assertion (tiling_utils._solve_simple_expr)
    on TimeSformer's (t, n) <-> (n, t) token transposes; skip that analysis."""
    import torch._inductor.config as inductor_config

    inductor_config.triton.coalesce_tiling_analysis = False


def model_compile(model: nn.Module, cfg: Config) -> nn.Module:
    """``torch.compile`` in ``runtime.compile_mode``; RoSTFine trains through
    ``training_outputs``, which torch.compile's wrapper would not cover, so it
    is compiled too."""
    inductor_workaround()
    mode = None if cfg.runtime.compile_mode == "default" else cfg.runtime.compile_mode
    compiled = torch.compile(model, mode=mode)
    if hasattr(model, "training_outputs"):
        compiled.training_outputs = torch.compile(model.training_outputs, mode=mode)
    return compiled
