"""Export a checkpoint to ONNX (softmax included) and check it with ONNX Runtime.

The exported graph takes ``video`` float (B, 3, T, S, S): RGB on [0, 1], then
``(x - mean) / std`` per channel with the statistics the checkpoint was trained
on (its ``input.normalization``: ImageNet, Kinetics 0.45 / 0.225, ViT 0.5 / 0.5
..., read from where its weights came from), and ``speed`` float (B, n_speed)
standardised (see the checkpoint's speed_scaler), and returns ``probs`` (B, 5):
the deployed model is the one place where softmax lives inside the graph, so
clients never apply it themselves. The normalisation's name, mean and std are in
the report, in the model's metadata_props and in its description (doc_string).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modeling.checkpoint import checkpoint_load


class ProbabilityModel(nn.Module):
    """The trained model followed by the one softmax."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor, speed: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(video, speed).float(), dim=-1)


class OnnxCheckError(RuntimeError):
    """ONNX Runtime's output differs from PyTorch's beyond the tolerance."""


def onnx_export(
    checkpoint: str | Path,
    out_path: str | Path,
    *,
    batch: int = 2,
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
) -> dict:
    """Write ``out_path`` (.onnx) and a ``.json`` beside it; returns the report.

    With ``check`` the exported graph runs in ONNX Runtime on a random input and
    must match PyTorch within ``atol`` (raises OnnxCheckError otherwise).
    """
    model, meta, _, _ = checkpoint_load(checkpoint, device="cpu")
    wrapped = ProbabilityModel(model).eval()
    n_speed = meta["model"]["kwargs"]["n_speed"]
    size, n_frames = meta["input"]["size"], meta["input"]["n_frames"]
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(batch, 3, n_frames, size, size, generator=gen)
    speed = torch.randn(batch, n_speed, generator=gen)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            (video, speed),
            str(out_path),
            input_names=["video", "speed"],
            output_names=["probs"],
            dynamic_axes={
                "video": {0: "batch"},
                "speed": {0: "batch"},
                "probs": {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )
    _metadata_add(out_path, meta["input"])
    report = {
        "onnx": str(out_path),
        "checkpoint": meta["path"],
        "model": meta["model"],
        "input": meta["input"],
        "speed_scaler": meta["speed_scaler"],
        "opset": opset,
    }
    if check:
        report["max_abs_diff"] = onnx_check(out_path, wrapped, video, speed, atol=atol)
    out_path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _metadata_add(path: Path, inputs: dict) -> None:
    """The input contract in the model file itself (ONNX metadata_props and the
    description), so a runtime that has only the .onnx normalises as training
    did."""
    import onnx

    model = onnx.load(str(path))
    model.doc_string = input_description(inputs)
    for key in ("normalization", "mean", "std", "n_frames", "size"):
        if key in inputs:
            entry = model.metadata_props.add()
            entry.key, entry.value = f"input_{key}", json.dumps(inputs[key])
    onnx.save(model, str(path))


def input_description(inputs: dict) -> str:
    """The graph's input contract in words, from a checkpoint's ``input``."""
    statistics = "ImageNet statistics (a checkpoint that records none)"
    if "normalization" in inputs:
        statistics = (
            f"the {inputs['normalization']} statistics, mean {inputs['mean']} "
            f"and std {inputs['std']}"
        )
    return (
        f"video float (B, 3, {inputs['n_frames']}, {inputs['size']}, "
        f"{inputs['size']}): RGB on [0, 1], then (x - mean) / std per channel "
        f"with {statistics}; speed float (B, n_speed), standardised with the "
        "checkpoint's speed_scaler; returns probs (B, 5) over grades A..E "
        "(softmax applied)."
    )


def onnx_check(
    path: str | Path,
    reference: nn.Module,
    video: torch.Tensor,
    speed: torch.Tensor,
    *,
    atol: float = 1e-4,
) -> float:
    """Max |ONNX Runtime - PyTorch| on the given input; raises beyond ``atol``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"video": video.numpy(), "speed": speed.numpy()})[0]
    with torch.no_grad():
        want = reference(video, speed).numpy()
    diff = float(np.abs(got - want).max())
    if not diff <= atol:
        raise OnnxCheckError(
            f"ONNX Runtime output differs from PyTorch by {diff:.2e} (> {atol:.0e}); "
            "the exported graph is not faithful"
        )
    return diff
