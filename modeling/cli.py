"""Command line: ``python -m modeling <command> ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from modeling.checkpoint import CheckpointError
from modeling.config import ConfigError, config_load
from modeling.cv import CVError
from modeling.manifest import ManifestError
from modeling.profiles import PROFILE_CONFIGS, profile_config

EPILOG = """\
examples:
  python -m modeling make-synthetic --out var/synth --n-clips 120 --n-patients 20
  python -m modeling train --config cfg.yaml --data var/synth --out var/run1
  python -m modeling train --data var/synth --out var/run2 \\
      --set model.name=x3d --set optim.epochs=30
  python -m modeling train --profile clinic --data export.zip --out var/run3
  python -m modeling evaluate --checkpoint var/run1/fold_0/checkpoint \\
      --data var/synth --held-out --out var/eval1
  python -m modeling predict --checkpoint var/run1/final/checkpoint \\
      --data var/new --out var/pred
  python -m modeling export-onnx --checkpoint var/run1/final/checkpoint \\
      --out var/model.onnx
"""


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="cross-validate a model (the papers' protocol) or train a final one",
        description=(
            "Run patient-grouped, grade-mode-stratified k-fold cross-validation: per "
            "fold, train on the training patients, pick the epoch on a validation "
            "split of those patients, test on the held-out fold. Writes config.yaml, "
            "folds.json, fold_<i>/checkpoint/, oof_predictions.jsonl and "
            "metrics.json under --out. With --final, train one model on every clip "
            "instead (checkpoint in OUT/final/checkpoint)."
        ),
    )
    base = p.add_mutually_exclusive_group()
    base.add_argument(
        "--config", type=Path, help="YAML config (defaults: the paper's setting)"
    )
    base.add_argument(
        "--profile",
        choices=sorted(PROFILE_CONFIGS),
        help="the platform's training profile of that name: clinic (CPU, "
        "minutes: compact X3D, 8 frames at 64 px, AdamW), timesformer (the "
        "paper's, GPU), tiny (a smoke test)",
    )
    p.add_argument(
        "--data", type=Path, required=True, help="manifest directory, or an export zip"
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (repeatable), e.g. --set optim.lr=0.01",
    )
    p.add_argument("--final", action="store_true", help="train one deployable model")


def _add_checkpoint_cmd(sub: argparse._SubParsersAction, name: str, text: str) -> None:
    p = sub.add_parser(name, help=text, description=text)
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="checkpoint folder, e.g. OUT/fold_0/checkpoint",
    )
    p.add_argument(
        "--data", type=Path, required=True, help="manifest directory, or an export zip"
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    if name == "evaluate":
        p.add_argument(
            "--held-out",
            action="store_true",
            help="score a cross-validation fold's checkpoint (OUT/fold_<i>/"
            "checkpoint) only on the clips that fold held out (its test clips, "
            "from OUT/folds.json): a fold's model has trained on the others",
        )


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m modeling",
        description="Grade-distribution models for tracked sperm clips.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_checkpoint_cmd(
        sub,
        "evaluate",
        "score a checkpoint on a labelled manifest (writes predictions.jsonl and "
        "metrics.json)",
    )
    _add_checkpoint_cmd(
        sub,
        "predict",
        "predict grade distributions for every clip of a manifest (votes optional)",
    )
    p = sub.add_parser(
        "export-onnx",
        help="export a checkpoint to ONNX (softmax included) and check it",
        description=(
            "Export to ONNX with inputs video (B,3,T,S,S) and speed (B,n_speed), "
            "output probs (B,5); the result is checked against PyTorch with ONNX "
            "Runtime. A .json beside the .onnx records the input format and the "
            "speed standardisation."
        ),
    )
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="path of the .onnx file")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the ORT comparison")
    p = sub.add_parser(
        "make-synthetic",
        help="write a synthetic dataset with a simulated expert panel",
        description="Render synthetic clips and panel votes in the manifest format.",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-clips", type=int, default=120)
    p.add_argument("--n-patients", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-frames", type=int, default=16)
    p.add_argument("--size", type=int, default=150)
    return parser


def _train(args: argparse.Namespace) -> dict:
    from modeling.data import clipset_load
    from modeling.training import run_cv, train_final

    base = profile_config(args.profile) if args.profile else None
    cfg = config_load(args.config, overrides=args.overrides, base=base)
    clips = clipset_load(args.data, speed_features=cfg.data.speed_features)
    if args.final:
        result = train_final(cfg=cfg, clips=clips, out_dir=args.out)
        return {"out": str(args.out), "best_epoch": result.best_epoch, **result.metrics}
    summary = run_cv(cfg=cfg, clips=clips, out_dir=args.out)
    return {"out": str(args.out), "mean": summary["mean"], "std": summary["std"]}


def _predict(args: argparse.Namespace, *, need_labels: bool) -> dict:
    from modeling.manifest import manifest_read
    from modeling.predict import predict

    clip_ids = None
    if need_labels:
        manifest_read(args.data, require_votes=True)  # clear error when unlabelled
        if args.held_out:
            clip_ids = _held_out_ids(args.checkpoint)
    metrics = predict(
        checkpoint=args.checkpoint,
        data=args.data,
        out=args.out,
        device=args.device,
        clip_ids=clip_ids,
    )
    result = {"predictions": str(args.out / "predictions.jsonl")}
    if metrics:
        result.update({k: v for k, v in metrics.items() if k != "top_hi"})
    return result


def _held_out_ids(checkpoint: Path) -> list[str]:
    """The test clips of the fold whose checkpoint this is (RUN/fold_<i>/checkpoint)."""
    fold = checkpoint.resolve().parent
    folds_file = fold.parent / "folds.json"
    if not fold.name.startswith("fold_") or not folds_file.is_file():
        raise CVError(
            f"--held-out needs a fold's checkpoint of a cross-validation run "
            f"(RUN/fold_<i>/checkpoint with RUN/folds.json); {checkpoint} is not one"
        )
    folds = json.loads(folds_file.read_text())
    if fold.name not in folds:
        raise CVError(f"{folds_file} has no {fold.name}")
    return list(folds[fold.name]["test"])


def _export(args: argparse.Namespace) -> dict:
    from modeling.onnx_export import onnx_export

    return onnx_export(
        args.checkpoint, args.out, opset=args.opset, check=not args.no_check
    )


def _synthetic(args: argparse.Namespace) -> dict:
    from modeling.synthetic import write_synthetic_manifest

    out = write_synthetic_manifest(
        args.out,
        n_clips=args.n_clips,
        n_patients=args.n_patients,
        seed=args.seed,
        n_frames=args.n_frames,
        size=args.size,
    )
    return {"manifest": str(out)}


def main(argv: list[str] | None = None) -> int:
    args = parser_build().parse_args(argv)
    commands = {
        "train": _train,
        "evaluate": lambda a: _predict(a, need_labels=True),
        "predict": lambda a: _predict(a, need_labels=False),
        "export-onnx": _export,
        "make-synthetic": _synthetic,
    }
    try:
        result = commands[args.command](args)
    except (ConfigError, ManifestError, CheckpointError, CVError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        # e.g. an unknown model name or missing pretrained weights: the message
        # says what to do, a traceback would hide it.
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    return 0
