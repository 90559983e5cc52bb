"""Wall time of the papers' protocol: 3-fold patient-grouped cross-validation of
TimeSformer, 615 synthetic clips, 100 epochs, through the project's trainer
(``modeling.training.run_cv``), on one GPU. Optionally distils the clinic model
from the resulting fold checkpoints (``modeling.distill.distill_cv``) and
compares its EMD with the TimeSformer's on the same folds.

    python benchmarks/cv_walltime.py --out /tmp/cv                  # measured
    python benchmarks/cv_walltime.py --out /tmp/cv --epochs 10      # extrapolated
    python benchmarks/cv_walltime.py --out /tmp/cv --distill-epochs 100

The synthetic manifest is rendered in parallel (``--workers`` shards of
``modeling.synthetic.write_synthetic_manifest``, merged) unless ``--data`` names
one. With fewer than 100 epochs the 100-epoch time is extrapolated linearly
from the per-epoch time measured after the first epoch (so compilation counts
once) and the JSON says so. Last line: JSON with units in the keys.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from modeling import training  # noqa: E402
from modeling.config import config_from_dict  # noqa: E402
from modeling.data import clipset_load  # noqa: E402

PAPER_EPOCHS = 100


def _shard(args: tuple[Path, int, int, int]) -> Path:
    from modeling.synthetic import write_synthetic_manifest

    out, n_clips, n_patients, seed = args
    return write_synthetic_manifest(
        out, n_clips=n_clips, n_patients=n_patients, seed=seed
    )


def synthetic_manifest(
    out: Path, *, n_clips: int, n_patients: int, workers: int, seed: int
) -> Path:
    """Render ``n_clips`` clips in ``workers`` shards and merge their manifests.

    Each shard has its own patients (ids prefixed by the shard), so patient
    grouping holds across the merged set.
    """
    if (out / "manifest.jsonl").is_file():
        return out
    shards = min(workers, n_patients)
    sizes = [n_clips // shards + (i < n_clips % shards) for i in range(shards)]
    patients = [n_patients // shards + (i < n_patients % shards) for i in range(shards)]
    jobs = [
        (out / f"shard{i}", sizes[i], patients[i], seed * 1000 + i)
        for i in range(shards)
    ]
    with ProcessPoolExecutor(max_workers=shards) as pool:
        shard_dirs = list(pool.map(_shard, jobs))
    (out / "clips").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, shard in enumerate(shard_dirs):
        for line in (shard / "manifest.jsonl").read_text().splitlines():
            row = json.loads(line)
            new_id = f"s{i:02d}_{row['clip_id']}"
            shutil.move(shard / row["array"], out / "clips" / f"{new_id}.npy")
            row |= {
                "clip_id": new_id,
                "patient_id": f"S{i:02d}-{row['patient_id']}",
                "array": f"clips/{new_id}.npy",
            }
            lines.append(json.dumps(row))
    meta = json.loads((shard_dirs[0] / "dataset.json").read_text())
    meta |= {"n_clips": len(lines), "n_patients": n_patients, "seed": seed}
    meta["source"] += f" ({shards} shards merged by benchmarks/cv_walltime.py)"
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    for shard in shard_dirs:
        shutil.rmtree(shard)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--data", type=Path, default=None, help="existing manifest")
    parser.add_argument("--n-clips", type=int, default=615)
    parser.add_argument("--n-patients", type=int, default=48)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=PAPER_EPOCHS)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--model", default="timesformer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    parser.add_argument("--scheduler", default="none", choices=["none", "cosine"])
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument(
        "--compile-mode",
        default="default",
        help="runtime.compile_mode (reduce-overhead: CUDA graphs; max-autotune)",
    )
    parser.add_argument(
        "--amp", default="auto", help="runtime.amp: auto (bf16 autocast) or bf16-pure"
    )
    parser.add_argument(
        "--model-kwargs",
        type=json.loads,
        default={},
        help='JSON kwargs for the model, e.g. \'{"temporal_layout": "frame_major"}\'',
    )
    parser.add_argument(
        "--distill-epochs",
        type=int,
        default=0,
        help="then distil the clinic model for this many epochs (0 = skip)",
    )
    parser.add_argument("--teacher-weight", type=float, default=0.5)
    parser.add_argument(
        "--reuse-teacher",
        action="store_true",
        help="distil from the TimeSformer already trained under --out (no new CV)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="CPU check: tiny models, 8 clips"
    )
    args = parser.parse_args(argv)
    tiny = args.smoke
    if tiny:
        args.n_clips, args.n_patients, args.k = 12, 6, 2
        args.batch_size, args.no_compile = 4, True
    data_dir = args.data or synthetic_manifest(
        args.out / "data",
        n_clips=args.n_clips,
        n_patients=args.n_patients,
        workers=args.workers,
        seed=0,
    )
    start = time.perf_counter()
    clips = clipset_load(data_dir, speed_features=["speed"])
    load_s = time.perf_counter() - start
    model_kwargs = {"weights": "random"}
    if tiny:
        from modeling.models import TINY_KWARGS

        model_kwargs = dict(TINY_KWARGS[args.model])
    model_kwargs |= args.model_kwargs
    data_cfg = {"n_frames": 4, "size": 32} if tiny else {"n_frames": 8, "size": 224}
    cfg = config_from_dict(
        {
            "data": data_cfg,
            "model": {"name": args.model, "kwargs": model_kwargs},
            "optim": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "optimizer": args.optimizer,
                "scheduler": args.scheduler,
                "warmup_epochs": args.warmup_epochs,
            },
            "cv": {"k": args.k},
            "runtime": {
                # An explicit index: the trainer compares tensor devices with it.
                "device": "cuda:0" if torch.cuda.is_available() else "cpu",
                "compile": not args.no_compile,
                "compile_mode": args.compile_mode,
                "amp": args.amp,
                "progress": False,
                "eval_batch_size": 64,
            },
        }
    )
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    teacher_dir = args.out / "teacher"
    reused = args.reuse_teacher and (teacher_dir / "metrics.json").is_file()
    if reused:  # the teacher of an earlier run under --out; only distil
        summary = json.loads((teacher_dir / "metrics.json").read_text())
        cv_s = None
    else:
        start = time.perf_counter()
        summary = training.run_cv(cfg=cfg, clips=clips, out_dir=teacher_dir)
        cv_s = time.perf_counter() - start
    # Per fold, the first epoch's excess time over a steady epoch is the one-off
    # cost (torch.compile, cuDNN autotuning); the rest scales with epochs.
    folds = json.loads((args.out / "teacher" / "folds.json").read_text())
    histories = [
        json.loads((args.out / "teacher" / name / "metrics.json").read_text())[
            "history"
        ]
        for name in sorted(folds)
    ]
    one_off_s = 0.0
    steady = []
    for name, history in zip(sorted(folds), histories, strict=True):
        n_train = len(folds[name]["train"])
        fold_steady = [r["clips_per_s"] for r in history[1:]] or [
            history[0]["clips_per_s"]
        ]
        steady_cps = sum(fold_steady) / len(fold_steady)
        steady.append(steady_cps)
        one_off_s += max(
            0.0, n_train / history[0]["clips_per_s"] - n_train / steady_cps
        )
    if cv_s is None:
        cv_100_s, how = None, "teacher reused: not timed"
    elif args.epochs >= PAPER_EPOCHS:
        cv_100_s, how = cv_s * PAPER_EPOCHS / args.epochs, "measured"
    else:
        per_epoch_s = (cv_s - one_off_s) / args.epochs
        cv_100_s = one_off_s + PAPER_EPOCHS * per_epoch_s
        how = f"extrapolated from {args.epochs} epochs"
    result = {
        "model": args.model,
        "gpu": gpu,
        "n_clips": len(clips),
        "k": args.k,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": f"{args.optimizer} lr {args.lr} {args.scheduler}",
        "compile": not args.no_compile,
        "compile_mode": args.compile_mode,
        "amp": args.amp,
        "model_kwargs": args.model_kwargs,
        "data_load_s": round(load_s, 1),
        "cv_wall_s": None if cv_s is None else round(cv_s, 1),
        "cv_100_epochs_wall_s": None if cv_100_s is None else round(cv_100_s, 1),
        "cv_100_epochs_how": how,
        "teacher_reused": reused,
        "train_clips_per_s_steady": round(sum(steady) / len(steady), 1),
        "one_off_s": round(one_off_s, 1),
        "teacher_test_emd_mean": summary["mean"]["emd"],
        "teacher_test_emd_std": summary["std"]["emd"],
        "mean_distribution_emd": summary["baseline_mean_distribution"]["mean"]["emd"],
        "teacher_mode_accuracy": summary["mean"]["mode_accuracy"],
    }
    print(json.dumps(result), flush=True)
    if args.distill_epochs:
        from modeling.distill import distill_cv
        from modeling.models import TINY_KWARGS

        student_kwargs = dict(TINY_KWARGS["clinic"]) if tiny else {"weights": "random"}
        student_cfg = config_from_dict(
            {
                "data": data_cfg,
                "model": {"name": "clinic", "kwargs": student_kwargs},
                "optim": {
                    "epochs": args.distill_epochs,
                    "batch_size": args.batch_size,
                    "lr": 0.01,
                },
                "cv": {"k": args.k},
                "runtime": {
                    "device": "cuda:0" if torch.cuda.is_available() else "cpu",
                    "progress": False,
                    "eval_batch_size": 64,
                },
            }
        )
        distilled = distill_cv(
            cfg=student_cfg,
            clips=clips,
            teacher_dir=args.out / "teacher",
            out_dir=args.out / "clinic",
            teacher_weight=args.teacher_weight,
        )
        result |= {
            "clinic_distill_epochs": args.distill_epochs,
            "clinic_distill_wall_s": round(distilled["wall_s"], 1),
            "clinic_test_emd_mean": distilled["mean"]["emd"],
            "clinic_test_emd_std": distilled["std"]["emd"],
            "clinic_emd_ratio_to_timesformer": round(
                distilled["emd_ratio_to_teacher"], 3
            ),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
