"""Part 8 of issue 4: every backbone x loss under the papers' protocol.

Generates (or reads) a synthetic panel dataset, runs patient-grouped stratified
k-fold CV for each model and loss, writes the Table-1-style markdown
(docs/model_comparison.md by default) and prints one JSON line last.

    # the full table on a GPU machine (random-init backbones: nothing downloads)
    python benchmarks/compare_models.py --n-clips 615 --epochs 30
    # a CPU-sized version: every backbone at 0.2-0.9 M parameters, two runs at once
    python benchmarks/compare_models.py --profile small --n-clips 200 \\
        --source-size 64 --size 48 --epochs 20 --optimizer adamw --lr 3e-3 \\
        --jobs 2 --doc var/compare_small.md
    # with power: three seeds, controls on the clinic model, paired intervals
    # against the speed-only kNN (docs/model_comparison_600.md gives the rest)
    python benchmarks/compare_models.py --profile small --n-clips 600 \
        --models clinic,resnet_image,resnet_image:per_frame --losses emd \
        --controls video_zeroed,video_shuffled,speed_zeroed --seeds 5,6,7 \
        --also-select-by loss --resume --out var/compare_power
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modeling.compare import (  # noqa: E402
    IMAGE_MODELS,
    PROFILES,
    RunSpec,
    best_row,
    compare_collect,
    compare_run,
    profile_kwargs,
    run_specs,
)
from modeling.compare_report import compare_markdown, context_describe  # noqa: E402
from modeling.config import config_from_dict  # noqa: E402
from modeling.data import clipset_load  # noqa: E402
from modeling.losses import LOSSES  # noqa: E402
from modeling.paired import N_BOOT  # noqa: E402


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="existing manifest dir (else generated)")
    p.add_argument("--n-clips", type=int, default=615)
    p.add_argument("--n-patients", type=int, default=None, help="default n_clips/5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source-frames", type=int, default=16)
    p.add_argument("--source-size", type=int, default=150)
    p.add_argument("--frames", type=int, default=8, help="model input frames")
    p.add_argument("--size", type=int, default=224, help="model input px")
    p.add_argument(
        "--models",
        default="all",
        help="comma list or 'all'; a variant after a colon (resnet_image:per_frame)",
    )
    p.add_argument(
        "--seeds",
        default=None,
        help="comma list of seeds (folds, init, data order); default --seed",
    )
    p.add_argument(
        "--controls",
        default="",
        help="comma list of video_zeroed, video_shuffled, speed_zeroed",
    )
    p.add_argument(
        "--control-models",
        default=None,
        help="models the controls run on (default: the first video model)",
    )
    p.add_argument(
        "--also-select-by",
        default="none",
        choices=["none", "emd", "mse", "jsd", "ce", "loss"],
        help="a second checkpoint rule reported beside validation EMD",
    )
    p.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap resamples")
    p.add_argument(
        "--resume",
        action="store_true",
        help="read back runs already finished under --out with the same config",
    )
    p.add_argument("--losses", default=",".join(LOSSES), help="comma list")
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="full",
        help="model sizes: full (paper-sized), small (CPU table), tiny (tests)",
    )
    p.add_argument("--tiny", action="store_true", help="same as --profile tiny")
    p.add_argument("--jobs", type=int, default=1, help="CV runs at once (CPU only)")
    p.add_argument("--threads-per-job", type=int, default=1)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--k", type=int, default=3)
    p.add_argument(
        "--no-balanced", action="store_true", help="plain shuffling, no class balance"
    )
    p.add_argument("--speed-features", default="speed", help="comma list or ''")
    p.add_argument("--budget-s", type=float, default=None, help="start no run after")
    p.add_argument(
        "--from-json",
        type=Path,
        help="rewrite the table from a saved compare.json instead of training",
    )
    p.add_argument("--note", default="", help="an extra line for the table's header")
    p.add_argument("--out", type=Path, default=REPO / "var" / "compare")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "model_comparison.md")
    return p.parse_args()


def _param_counts(kwargs: dict, base) -> list[tuple[str, int]]:
    from modeling.compare import model_kwargs_fit
    from modeling.models import create_model

    n_speed = len(base.data.speed_features)
    counts = []
    for name, kw in kwargs.items():
        model = create_model(name, n_speed=n_speed, **model_kwargs_fit(kw, base))
        counts.append((name, sum(p.numel() for p in model.parameters())))
    return counts


def main() -> None:
    args = _args()
    from modeling.models import list_models

    if args.tiny:
        args.profile = "tiny"
    data = args.data
    if data is None:
        from modeling.synthetic import write_synthetic_manifest

        data = args.out / f"synthetic_{args.n_clips}_seed{args.seed}"
        if not (data / "manifest.jsonl").is_file():
            write_synthetic_manifest(
                data,
                n_clips=args.n_clips,
                n_patients=args.n_patients or max(args.k + 1, args.n_clips // 5),
                seed=args.seed,
                n_frames=args.source_frames,
                size=args.source_size,
            )
    speed = [s for s in args.speed_features.split(",") if s]
    base = config_from_dict(
        {
            "data": {
                "n_frames": args.frames,
                "size": args.size,
                "speed_features": speed,
            },
            "optim": {
                "optimizer": args.optimizer,
                "lr": args.lr,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
            },
            "cv": {
                "k": args.k,
                "seed": args.seed,
                "balanced_sampling": not args.no_balanced,
                "also_select_by": args.also_select_by,
            },
            "runtime": {"progress": sys.stderr.isatty()},
        }
    )
    clips = clipset_load(data, speed_features=speed)
    models = list_models() if args.models == "all" else args.models.split(",")
    kwargs = profile_kwargs(args.profile, sorted({m.split(":")[0] for m in models}))
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    controls = [c for c in args.controls.split(",") if c]
    control_models = args.control_models.split(",") if args.control_models else None
    if args.jobs <= 1:
        import torch

        torch.set_num_threads(args.threads_per_job)
    start = time.perf_counter()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        if isinstance(saved, list):  # runs.json of a run that did not finish
            saved = {"runs": saved, "seeds": seeds, "skipped": []}
            saved["specs"] = [
                dataclasses.asdict(s)
                for s in run_specs(
                    models,
                    args.losses.split(","),
                    controls=controls,
                    control_models=control_models,
                )
            ]
            saved["wall_s"] = sum(r["wall_s"] for r in saved["runs"])
            saved["device"] = saved["runs"][0]["device"]
            saved["threads_per_run"] = args.threads_per_job
        # The statistics are cheap and deterministic: always from the current code
        # over the runs' own out-of-fold files.
        specs = [
            RunSpec(**{**s, "extra": tuple(map(tuple, s["extra"]))})
            for s in saved["specs"]
        ]
        result = saved | compare_collect(
            clips=clips,
            base=base,
            specs=specs,
            seeds=saved["seeds"],
            runs=saved["runs"],
            n_boot=args.n_boot,
        )
    else:
        result = compare_run(
            clips=clips,
            base=base,
            models=models,
            losses=args.losses.split(","),
            model_kwargs=kwargs,
            out_dir=args.out / "runs",
            budget_s=args.budget_s,
            jobs=args.jobs,
            threads_per_job=args.threads_per_job,
            controls=controls,
            control_models=control_models,
            seeds=seeds,
            n_boot=args.n_boot,
            resume=args.resume,
        )
        (args.out / "compare.json").write_text(json.dumps(result, indent=2))
    sizes = {
        "full": "full-size, random init",
        "tiny": "registry tiny configs",
        "small": "the 'small' CPU profile of modeling.compare.SMALL_KWARGS",
    }
    extra = {
        "Models": sizes[args.profile]
        + " (no pretrained weights: nothing is downloaded); parameters: "
        + ", ".join(f"{m} {n / 1e6:.2f} M" for m, n in _param_counts(kwargs, base)),
    }
    if args.jobs > 1:
        extra["Parallelism"] = (
            f"{args.jobs} CV runs at once, {args.threads_per_job} torch thread(s) each"
        )
    if args.note:
        extra["Note"] = args.note
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg.startswith(("--from-json", "--note")):
            skip = arg in ("--from-json", "--note")
            continue
        argv.append(arg)
    extra["Command"] = f"`python benchmarks/compare_models.py {shlex.join(argv)}`"
    doc = compare_markdown(
        result,
        context=context_describe(clips=clips, base=base, result=result, extra=extra),
    )
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(doc)
    best = best_row(result)
    video = best_row(result, video_only=True)
    image = best_row(result, image_only=True)
    base_emd = result["baseline"]["mean"]["emd"]
    refs = {r["name"]: r["mean"]["emd"] for r in result.get("references", [])}
    print(doc)
    print(
        json.dumps(
            {
                # no finished run (e.g. --budget-s 0: the reference rows only)
                "best_model": f"{best['model']}/{best['loss']}" if best else None,
                "best_emd": best["mean"]["emd"] if best else None,
                "baseline_emd": base_emd,
                "best_over_baseline_ratio": best["mean"]["emd"] / base_emd
                if best
                else None,
                "best_video_emd": video["mean"]["emd"] if video else None,
                "best_image_emd": image["mean"]["emd"] if image else None,
                "image_models": sorted(IMAGE_MODELS),
                "reference_emd": refs,
                "n_runs": len(result["rows"]),
                "wall_s": time.perf_counter() - start,
                "device": result["device"],
            }
        )
    )


if __name__ == "__main__":
    main()
