"""Training throughput, clips/s at 8 x 224, for every registered model, side by side
with Hugging Face transformers' TimesformerForVideoClassification (base config,
random init, eager attention, bf16 autocast) as the peer, in one run on one GPU.

Every model, the peer included, trains through the project's own trainer step
(``modeling.training.train_one_epoch``: in-memory uint8 clips on the GPU, frame
sampling, resize 150 -> 224, rotation / flip / colour jitter on the GPU, bf16
autocast, EMD loss on the softmax, SGD as in the paper), so only the model
differs. GPU utilisation is sampled (NVML, via torch.cuda.utilization) during the
timed epochs.

    python benchmarks/train_throughput.py                 # all models + peer
    python benchmarks/train_throughput.py --models timesformer --batch-size 32

Last line: JSON {"peer_clips_per_s", "timesformer_clips_per_s", "ratio", "gpu", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling import training  # noqa: E402
from modeling.config import config_from_dict  # noqa: E402
from modeling.data import ClipSet, SpeedScaler  # noqa: E402
from modeling.models import TINY_KWARGS, create_model, list_models  # noqa: E402
from modeling.runtime import compute_dtype, model_compile  # noqa: E402

TRANSFORMERS = ("timesformer", "rostfine")


class PeerTimesformer(nn.Module):
    """HF TimesformerForVideoClassification behind our (video, speed) interface."""

    def __init__(self, *, n_frames: int, size: int, tiny: bool = False) -> None:
        super().__init__()
        from transformers import TimesformerConfig, TimesformerForVideoClassification

        small = (
            {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
            if tiny
            else {}
        )
        config = TimesformerConfig(
            num_frames=n_frames, image_size=size, num_labels=5, **small
        )
        config._attn_implementation = "eager"
        self.model = TimesformerForVideoClassification(config)

    def forward(self, video: torch.Tensor, speed: torch.Tensor) -> torch.Tensor:
        # HF takes (B, T, C, H, W); speed is ignored by the peer.
        return self.model(pixel_values=video.transpose(1, 2)).logits


class UtilisationSampler:
    """Samples GPU utilisation (%) every ``interval_s`` in a background thread."""

    def __init__(self, interval_s: float = 0.05, enabled: bool = True) -> None:
        self.interval_s = interval_s
        self.enabled = enabled
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:  # NVML missing: no samples, reported as null
                return
            time.sleep(self.interval_s)

    def __enter__(self) -> UtilisationSampler:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        # Skip the first samples: NVML averages over the previous ~1/6 s.
        tail = self.samples[4:] or self.samples
        return round(float(np.mean(tail)), 1) if tail else None


def synthetic_clips(*, n_clips: int, n_source_frames: int, seed: int) -> ClipSet:
    gen = torch.Generator().manual_seed(seed)
    videos = torch.randint(
        0,
        256,
        (n_clips, n_source_frames, 150, 150, 3),
        dtype=torch.uint8,
        generator=gen,
    )
    votes = torch.randint(0, 10, (n_clips, 5), generator=gen).float() + 1
    return ClipSet(
        clip_ids=[f"b{i}" for i in range(n_clips)],
        patient_ids=[f"p{i % 40}" for i in range(n_clips)],
        videos=videos,
        votes=votes,
        speed_raw=torch.rand(n_clips, 1, generator=gen) * 100,
        speed_names=["speed"],
        root=Path("."),
    )


def model_build(
    name: str, *, n_frames: int, size: int, tiny: bool, extra: dict | None = None
) -> nn.Module:
    if name == "peer":
        return PeerTimesformer(n_frames=n_frames, size=size, tiny=tiny)
    kwargs: dict = dict(TINY_KWARGS[name]) if tiny else {"weights": "random"}
    if name in TRANSFORMERS:
        kwargs |= {"num_frames": n_frames, "img_size": size}
    return create_model(name, **kwargs, **(extra or {}))


# Throughput options of the trainer, tried one at a time on TimeSformer (part 1
# of the GPU issue); each is a config setting or a model kwarg, so what helps is
# kept by naming it in a run's config.
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "batch64": {"batch_size": 64},
    "frame_major": {
        "batch_size": 64,
        "model_kwargs": {"temporal_layout": "frame_major"},
    },
    "bf16_pure": {"batch_size": 64, "amp": "bf16-pure"},
    "cuda_graphs": {"batch_size": 64, "compile_mode": "reduce-overhead"},
    "max_autotune": {"batch_size": 64, "compile_mode": "max-autotune-no-cudagraphs"},
    "combined": {
        "batch_size": 64,
        "amp": "bf16-pure",
        "compile_mode": "max-autotune",
        "model_kwargs": {"temporal_layout": "frame_major"},
    },
}


def throughput_measure(
    name: str,
    *,
    clips: ClipSet,
    batch_size: int,
    n_frames: int,
    size: int,
    compile_model: bool,
    epochs: int,
    device: torch.device,
    tiny: bool,
    extra: dict | None = None,
    amp: str = "auto",
    compile_mode: str = "default",
) -> dict:
    cfg = config_from_dict(
        {
            "data": {"n_frames": n_frames, "size": size, "store_on_device": "always"},
            "optim": {"batch_size": batch_size},
            "runtime": {
                "device": str(device),
                "progress": False,
                "amp": amp,
                "compile": compile_model,
                "compile_mode": compile_mode,
            },
        }
    )
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    model = model_build(name, n_frames=n_frames, size=size, tiny=tiny, extra=extra)
    model = model.to(device, dtype=compute_dtype(cfg))
    n_params = sum(p.numel() for p in model.parameters())
    optimizer, _ = training.optimizer_make(model, cfg)
    train_model = model_compile(model, cfg) if compile_model else model
    scaler = SpeedScaler.fit(clips.speed_raw, clips.speed_names)
    data = training.device_data(clips, scaler, cfg, device)
    train_idx = np.arange(len(clips))
    sample_gen = torch.Generator().manual_seed(0)
    aug_gen = torch.Generator(device=device).manual_seed(0)

    def epoch() -> dict:
        return training.train_one_epoch(
            model=train_model,
            data=data,
            train_idx=train_idx,
            optimizer=optimizer,
            cfg=cfg,
            device=device,
            sample_gen=sample_gen,
            aug_gen=aug_gen,
        )

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    epoch()  # warm-up: compilation, cuDNN autotuning, allocator; ends synced
    warmup_s = time.perf_counter() - start
    n_batches = len(clips) // batch_size
    with UtilisationSampler(enabled=cuda) as sampler:
        start = time.perf_counter()
        for _ in range(epochs):
            stats = epoch()  # ends with a host sync (the epoch loss)
        seconds = time.perf_counter() - start
    result = {
        "model": name,
        "model_kwargs": extra or {},
        "params_m": round(n_params / 1e6, 1),
        "batch_size": batch_size,
        "compiled": compile_model,
        "amp": amp,
        "compile_mode": compile_mode if compile_model else None,
        "clips_per_s": round(epochs * n_batches * batch_size / seconds, 1),
        "step_ms": round(1000 * seconds / (epochs * n_batches), 1),
        "gpu_util_percent": sampler.mean,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)
        if cuda
        else None,
        "warmup_s": round(warmup_s, 1),
        "final_loss": round(stats["loss"], 5),
    }
    return result


def training_flops_per_clip(name: str, *, n_frames: int, size: int) -> float:
    """Forward + backward FLOPs of one clip, counted by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model_build(name, n_frames=n_frames, size=size, tiny=False).cuda()
    video = torch.randn(1, 3, n_frames, size, size, device="cuda")
    speed = torch.zeros(1, 1, device="cuda")
    counter = FlopCounterMode(display=False)
    with counter, torch.autocast("cuda", dtype=torch.bfloat16):
        model(video, speed).float().sum().backward()
    del model
    torch.cuda.empty_cache()
    return float(counter.get_total_flops())


def matmul_tflops(n: int = 8192, repeats: int = 20) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * repeats / (start.elapsed_time(end) / 1000) / 1e12


def jobs_plan(args: argparse.Namespace) -> list[tuple[str, str, dict]]:
    """(row label, model name, throughput_measure settings) to run, in order:
    the named models (default: all and the peer), or with ``--variants`` the
    peer and then TimeSformer under each variant."""
    ours = {
        "batch_size": args.batch_size,
        "amp": args.amp,
        "compile_mode": args.compile_mode,
        "extra": args.model_kwargs,
    }
    peer = ("peer", "peer", {"batch_size": args.peer_batch_size, "extra": None})
    if not args.variants:
        names = args.models or [*list_models(), "peer"]
        return [peer if n == "peer" else (n, n, ours) for n in names]
    wanted = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    jobs = [peer]
    for variant in wanted:
        v = VARIANTS[variant]
        settings = {k: v.get(k, ours[k]) for k in ("batch_size", "amp", "compile_mode")}
        settings["extra"] = {**ours["extra"], **v.get("model_kwargs", {})}
        jobs.append((f"timesformer:{variant}", "timesformer", settings))
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: all + peer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--peer-batch-size", type=int, default=32)
    parser.add_argument("--n-clips", type=int, default=615)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs")
    parser.add_argument(
        "--compile",
        choices=["transformers", "all", "none"],
        default="transformers",
        help="which of our models run under torch.compile (the peer never does)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write results JSON")
    parser.add_argument(
        "--model-kwargs",
        type=json.loads,
        default={},
        help="JSON kwargs for our models, e.g. '{\"fused_temporal_attention\": true}'",
    )
    parser.add_argument("--amp", default="auto", help="runtime.amp of our models")
    parser.add_argument(
        "--compile-mode", default="default", help="runtime.compile_mode"
    )
    parser.add_argument(
        "--variants",
        default="",
        help=f"comma list of TimeSformer variants to try beside the peer, or 'all': "
        f"{', '.join(VARIANTS)}",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="start no further model or variant after this many seconds",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CPU check of the script itself: tiny models, 4 x 32 px, no figures",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.smoke:
        args.frames, args.size, args.compile = 4, 32, "none"
    elif not torch.cuda.is_available():
        print("This benchmark needs a CUDA GPU (or --smoke).", file=sys.stderr)
        return 2
    # An explicit index: the trainer compares tensor devices with this one.
    device = torch.device("cpu" if args.smoke else "cuda:0")
    torch.backends.cudnn.benchmark = True
    clips = synthetic_clips(n_clips=args.n_clips, n_source_frames=16, seed=0)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke)"
    rows = []
    for label, name, settings in jobs_plan(args):
        if args.budget_s is not None and time.perf_counter() - began > args.budget_s:
            row = {"model": label, "error": "skipped: --budget-s reached"}
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        compile_model = name != "peer" and (
            args.compile == "all"
            or (args.compile == "transformers" and name in TRANSFORMERS)
        )
        try:
            row = throughput_measure(
                name,
                clips=clips,
                n_frames=args.frames,
                size=args.size,
                compile_model=compile_model,
                epochs=args.epochs,
                device=device,
                tiny=args.smoke,
                **settings,
            )
            row["model"] = label
        except Exception as exc:  # one failing model must not hide the others
            row = {"model": label, "error": f"{type(exc).__name__}: {exc}"[:300]}
            torch.cuda.empty_cache()
        rows.append(row)
        print(json.dumps(row), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    by_name = {r["model"]: r for r in rows}
    tried = {
        label.split(":", 1)[1]: r["clips_per_s"]
        for label, r in by_name.items()
        if label.startswith("timesformer:") and "clips_per_s" in r
    }
    if tried:  # the best variant stands for our TimeSformer in the summary
        best_variant = max(tried, key=tried.get)
        by_name["timesformer"] = {
            **by_name[f"timesformer:{best_variant}"],
            "model": "timesformer",
        }
    ceiling = matmul_tflops() if device.type == "cuda" else None
    for name in ("timesformer", "peer"):
        if device.type == "cuda" and "clips_per_s" in by_name.get(name, {}):
            flops = training_flops_per_clip(name, n_frames=args.frames, size=args.size)
            by_name[name]["train_tflop_per_clip"] = round(flops / 1e12, 3)
            by_name[name]["achieved_tflops"] = round(
                flops * by_name[name]["clips_per_s"] / 1e12, 1
            )
    print(f"\n{'model':14} {'batch':>5} {'compiled':>8} {'clips/s':>8} {'GPU %':>6}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:14} ERROR {r['error']}")
            continue
        print(
            f"{r['model']:14} {r['batch_size']:5d} {str(r['compiled']):>8} "
            f"{r['clips_per_s']:8.1f} {r['gpu_util_percent'] or 0:6.1f}"
        )
    peer = by_name.get("peer", {}).get("clips_per_s")
    ours = by_name.get("timesformer", {}).get("clips_per_s")
    summary = {
        "peer_clips_per_s": peer,
        "timesformer_clips_per_s": ours,
        "ratio": round(ours / peer, 2) if peer and ours else None,
        "variants_clips_per_s": tried or None,
        "variants_ratio": {k: round(v / peer, 2) for k, v in tried.items()}
        if tried and peer
        else None,
        "best_variant": best_variant if tried else None,
        "gpu": gpu,
        "timesformer_gpu_util_percent": by_name.get("timesformer", {}).get(
            "gpu_util_percent"
        ),
        "bf16_matmul_tflops": round(ceiling, 1) if ceiling else None,
        "frames": args.frames,
        "size_px": args.size,
        "models_clips_per_s": {
            r["model"]: r.get("clips_per_s") for r in rows if r["model"] != "peer"
        },
        "torch": torch.__version__,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
