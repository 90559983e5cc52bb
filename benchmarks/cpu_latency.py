"""CPU latency per clip (8 x 224, batch 1) on 2 threads for every registered model,
and the clinic profile through ONNX Runtime, against Table 8 of Nakagawa et al.
(TimeSformer: 4,180 ms per batch of 8 on a 14-core desktop CPU).

    .venv/bin/python benchmarks/cpu_latency.py            # every model
    .venv/bin/python benchmarks/cpu_latency.py --models clinic timesformer

Weights are random (latency does not depend on them). Each figure is the median
of ``--repeats`` timed runs after one warm-up run. Last line: JSON
{"clinic_model", "clinic_ms_per_clip", "timesformer_ms_per_clip", "threads": 2, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling.compare import cpu_name  # noqa: E402
from modeling.models import create_model, list_models  # noqa: E402

PAPER_TIMESFORMER_MS_PER_CLIP = 4180 / 8  # Nakagawa et al., Table 8, 14 cores
CLINIC_TARGET_MS = 250.0


CPU_TIMES: list[float] = []


def _median_ms(fn, repeats: int) -> float:
    """Median wall ms; also records the median process CPU ms in CPU_TIMES, which
    shows when other load on the machine inflated the wall time."""
    fn()  # warm-up: allocator, oneDNN primitive creation
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    CPU_TIMES.append(statistics.median(cpu))
    return statistics.median(times)


def _inputs(frames: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(1, 3, frames, size, size, generator=gen), torch.zeros(1, 1)


def torch_latency_ms(name: str, *, frames: int, size: int, repeats: int) -> float:
    model = create_model(name, weights="random").eval()
    video, speed = _inputs(frames, size)
    with torch.inference_mode():
        return _median_ms(lambda: model(video, speed), repeats)


def onnx_latency_ms(
    name: str, *, frames: int, size: int, repeats: int, threads: int
) -> float:
    """Export with softmax inside (as ``modeling.onnx_export`` does) and time ORT."""
    import onnxruntime as ort

    model = create_model(name, weights="random").eval()
    video, speed = _inputs(frames, size)

    class Probs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, video, speed):
            return torch.softmax(self.model(video, speed), dim=-1)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Probs().eval(),
                (video, speed),
                str(path),
                input_names=["video", "speed"],
                output_names=["probs"],
                opset_version=17,
                dynamo=False,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        feeds = {"video": video.numpy(), "speed": speed.numpy()}
        got = session.run(None, feeds)[0]
        with torch.inference_mode():
            want = Probs()(video, speed).numpy()
        if abs(got - want).max() > 1e-3:
            raise RuntimeError(f"ONNX output of {name} differs from PyTorch")
        return _median_ms(lambda: session.run(None, feeds), repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3, help="heavy models")
    parser.add_argument("--clinic-repeats", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.models or list_models()
    rows = []
    for name in names:
        repeats = args.clinic_repeats if name == "clinic" else args.repeats
        ms = torch_latency_ms(name, frames=args.frames, size=args.size, repeats=repeats)
        rows.append(_row(name, "pytorch", ms))
        print(json.dumps(rows[-1]), flush=True)
    if "clinic" in names:
        ms = onnx_latency_ms(
            "clinic",
            frames=args.frames,
            size=args.size,
            repeats=args.clinic_repeats,
            threads=args.threads,
        )
        rows.append(_row("clinic", "onnxruntime", ms))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'model':14} {'runtime':12} {'ms/clip':>9} {'CPU ms':>9}")
    for r in rows:
        print(
            f"{r['model']:14} {r['runtime']:12} {r['ms_per_clip']:9.1f} "
            f"{r['cpu_ms_per_clip']:9.1f}"
        )
    clinic = [r["ms_per_clip"] for r in rows if r["model"] == "clinic"]
    timesformer = [r["ms_per_clip"] for r in rows if r["model"] == "timesformer"]
    clinic_ms = min(clinic) if clinic else None
    summary = {
        "clinic_model": "clinic (X3D-XS-sized: X3D at 112 px, 8 frames, 432-d head)",
        "clinic_ms_per_clip": clinic_ms,
        "clinic_runtime": next(
            (
                r["runtime"]
                for r in rows
                if r["model"] == "clinic" and r["ms_per_clip"] == clinic_ms
            ),
            None,
        ),
        "clinic_under_target": clinic_ms is not None and clinic_ms <= CLINIC_TARGET_MS,
        "timesformer_ms_per_clip": timesformer[0] if timesformer else None,
        "paper_timesformer_ms_per_clip_14_cores": PAPER_TIMESFORMER_MS_PER_CLIP,
        "threads": args.threads,
        "frames": args.frames,
        "size_px": args.size,
        "models_ms_per_clip": {
            r["model"]: r["ms_per_clip"] for r in rows if r["runtime"] == "pytorch"
        },
        "cpu": cpu_name(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
    }
    print(json.dumps(summary))
    return 0


def _row(name: str, runtime: str, ms: float) -> dict:
    return {
        "model": name,
        "runtime": runtime,
        "ms_per_clip": round(ms, 1),
        "cpu_ms_per_clip": round(CPU_TIMES[-1], 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
