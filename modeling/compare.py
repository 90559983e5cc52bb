"""The papers' comparison (Table 1 of Nakagawa et al.), reproduced on our data.

Every backbone x loss runs the same protocol (``modeling.training.run_cv``: the
same patient-grouped stratified folds for every row, checkpoint chosen on a
validation split of the training patients) and the table reports fold means ± std,
with the "training-set mean distribution" baseline as the floor to beat.

A comparison with power: each row may run for several seeds (each its own folds,
initialisation and data order), negative controls (``modeling.controls``) run
on the same folds, and every row is paired clip by clip with the speed-only kNN
of the same folds (``modeling.paired``: the difference in EMD with a patient
bootstrap interval). ``modeling.compare_report`` writes the markdown.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import platform
import re
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from modeling.config import Config, ConfigError, LossConfig, ModelConfig, config_load
from modeling.controls import CONTROLS
from modeling.data import ClipSet, clipset_load
from modeling.grade_tables import (
    fold_metrics,
    grade_figures,
    oof_emd,
    oof_predictions,
)
from modeling.metrics import emd_per_clip
from modeling.paired import LEVEL, N_BOOT, family_level, family_n_boot, paired_delta
from modeling.references import (
    SPEED_KNN_NAME,
    reference_predictions,
)
from modeling.training import folds_for, mean_std, run_cv

IMAGE_MODELS = frozenset({"resnet_image"})
TABLE_COLUMNS = (
    ("emd", "EMD", "sci", "min"),
    ("mse", "MSE", "sci", "min"),
    ("jsd", "JSD", "sci", "min"),
    ("ce", "CE", "fix", "min"),
    ("hi", "HI", "fix", "max"),
    ("macro_hi", "Macro HI", "fix", "max"),
    ("macro_f1", "Macro F1", "fix", "max"),
    ("mode_accuracy", "Mode acc.", "fix", "max"),
)
# Model variants a --models entry may name after a colon (extra model kwargs).
# The image baseline: "per_frame" is MERSV's protocol (every frame a training
# sample and, at evaluation, a prediction of its own); "per_frame_mean" trains
# the same way but is scored on the clip's frame-averaged probabilities, which
# can only lower EMD, so it is not the paper's number.
VARIANTS: dict[str, dict] = {
    "per_frame": {"per_frame": True, "score_frames": True},
    "per_frame_mean": {"per_frame": True},
}

# Model settings per size profile. "tiny": the registry's test configs (4 frames
# of 32 px, very unequal sizes). "small": a CPU-sized comparison with every
# backbone at 0.2-0.9 M parameters, for 8 frames of 48-64 px (the TimeSformers
# use 8 px patches so a frame still has 36-64 tokens). "full": the paper-sized
# networks, random init (no pretrained file is downloaded).
_SMALL_TIMESFORMER = {
    "weights": "random",
    "embed_dim": 96,
    "depth": 4,
    "num_heads": 4,
    "patch_size": 8,
    "img_size": 64,
    "num_frames": 8,
}
SMALL_KWARGS: dict[str, dict] = {
    "resnet_image": {"tiny": True, "width": 16, "weights": "random"},
    "r2plus1d": {"tiny": True, "widths": [16, 32, 64, 128], "weights": "random"},
    "x3d": {"tiny": True, "weights": "random"},
    "slowfast": {"tiny": True, "weights": "random"},
    "timesformer": _SMALL_TIMESFORMER,
    "rostfine": {**_SMALL_TIMESFORMER, "num_selected": 12, "branch_depth": 2},
    "clinic": {"tiny": True, "weights": "random", "input_size": 32},
}
PROFILES = ("full", "small", "tiny")


def profile_kwargs(profile: str, models: list[str]) -> dict[str, dict]:
    """Model kwargs for ``models`` under a size profile (see ``PROFILES``)."""
    from modeling.models import TINY_KWARGS

    if profile == "full":
        return {m: {"weights": "random"} for m in models}
    table = {"tiny": TINY_KWARGS, "small": SMALL_KWARGS}.get(profile)
    if table is None:
        raise ValueError(f"unknown profile {profile!r}; choose from {PROFILES}")
    missing = [m for m in models if m not in table]
    if missing:
        raise ValueError(f"profile {profile!r} has no settings for {missing}")
    return {m: dict(table[m]) for m in models}


def model_kwargs_fit(kwargs: dict, cfg: Config) -> dict:
    """Kwargs with the input geometry (num_frames, img_size) set from ``cfg.data``."""
    fitted = dict(kwargs)
    if "num_frames" in fitted:
        fitted["num_frames"] = cfg.data.n_frames
    if "img_size" in fitted:
        fitted["img_size"] = cfg.data.size
    return fitted


@dataclass(frozen=True)
class RunSpec:
    """One row of the table: a registry model (with a variant's extra kwargs),
    a loss and a negative control (``modeling.controls``)."""

    model: str
    loss: str
    label: str
    control: str = "none"
    extra: tuple[tuple[str, object], ...] = ()

    @property
    def dirname(self) -> str:
        name = re.sub(r"[^A-Za-z0-9]+", "_", self.label).strip("_")
        return f"{name}__{self.loss}"


def run_specs(
    models: list[str],
    losses: list[str],
    *,
    controls: list[str] = (),
    control_models: list[str] | None = None,
) -> list[RunSpec]:
    """Every model x loss (each model of the first loss first), each of
    ``control_models`` (default: the first video model) followed by its
    controls with the first loss. A model may name a variant,
    ``resnet_image:per_frame`` (``VARIANTS``)."""
    unknown = [c for c in controls if c not in CONTROLS or c == "none"]
    if unknown:
        raise ValueError(f"unknown control(s) {unknown}; choose from {CONTROLS[1:]}")
    if controls and control_models is None:
        video = [m for m in models if m.split(":")[0] not in IMAGE_MODELS]
        if not video:
            raise ValueError("controls need a video model; name it in control_models")
        control_models = video[:1]
    specs = []
    for loss in losses:
        for model in models:
            spec = _spec(model, loss)
            specs.append(spec)
            if loss != losses[0] or model not in (control_models or []):
                continue
            for control in controls:
                label = f"{spec.label} [{control.replace('_', ' ')}]"
                specs.append(dataclasses.replace(spec, label=label, control=control))
    missing = [m for m in control_models or [] if m not in models]
    if controls and missing:
        raise ValueError(f"control models {missing} are not among the models")
    return specs


def _spec(model: str, loss: str) -> RunSpec:
    name, _, variant = model.partition(":")
    if not variant:
        return RunSpec(model=name, loss=loss, label=name)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {list(VARIANTS)}")
    extra = tuple(sorted(VARIANTS[variant].items()))
    label = f"{name} ({variant.replace('_', ' ')})"
    return RunSpec(model=name, loss=loss, label=label, extra=extra)


def seeded(base: Config, seed: int) -> Config:
    """``base`` for one seed: the folds (``cv.seed``) and the initialisation and
    data order (``runtime.seed``) both follow it."""
    return dataclasses.replace(
        base,
        cv=dataclasses.replace(base.cv, seed=seed),
        runtime=dataclasses.replace(base.runtime, seed=seed),
    )


def _run_config(base: Config, spec: RunSpec, seed: int, kwargs: dict) -> Config:
    cfg = seeded(base, seed)
    return dataclasses.replace(
        cfg,
        model=ModelConfig(
            name=spec.model,
            kwargs=model_kwargs_fit({**kwargs, **dict(spec.extra)}, base),
        ),
        loss=LossConfig(name=spec.loss),
        data=dataclasses.replace(cfg.data, control=spec.control),
    )


def _run_entry(spec: RunSpec, seed: int, run_dir: Path, summary: dict) -> dict:
    folds = summary["folds"]
    return {
        "label": spec.label,
        "model": spec.model,
        "loss": spec.loss,
        "control": spec.control,
        "seed": seed,
        "dir": str(run_dir),
        "mean": summary["mean"],
        "std": summary["std"],
        "test": [f["test"] for f in folds],
        "test_alt": [f["test_alt"] for f in folds] if "mean_alt" in summary else None,
        "selection_alt": summary.get("selection_alt"),
        "wall_s": summary["wall_s"],
        "device": summary["device"],
    }


def _run_one(
    clips: ClipSet, base: Config, spec: RunSpec, seed: int, kwargs: dict, out: Path
) -> dict:
    run_dir = out / f"seed_{seed}" / spec.dirname
    cfg = _run_config(base, spec, seed, kwargs)
    summary = run_cv(cfg=cfg, clips=clips, out_dir=run_dir)
    return _run_entry(spec, seed, run_dir, summary)


def run_finished(
    base: Config, spec: RunSpec, seed: int, kwargs: dict, out: Path
) -> dict | None:
    """The entry of a run already finished under ``out`` with exactly this
    config (its config.yaml and metrics.json), else None."""
    run_dir = out / f"seed_{seed}" / spec.dirname
    if not (run_dir / "metrics.json").is_file():
        return None
    try:
        same = config_load(run_dir / "config.yaml") == _run_config(
            base, spec, seed, kwargs
        )
    except ConfigError:
        return None
    if not same:
        return None
    summary = json.loads((run_dir / "metrics.json").read_text())
    return _run_entry(spec, seed, run_dir, summary)


_WORKER: dict = {}


def _worker_init(root: str, speed_features: list[str], threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["clips"] = clipset_load(root, speed_features=speed_features)


def _worker_run(base: Config, spec: RunSpec, seed: int, kwargs: dict, out: str) -> dict:
    return _run_one(_WORKER["clips"], base, spec, seed, kwargs, Path(out))


def compare_run(
    *,
    clips: ClipSet,
    base: Config,
    models: list[str],
    losses: list[str],
    model_kwargs: dict[str, dict],
    out_dir: str | Path,
    budget_s: float | None = None,
    jobs: int = 1,
    threads_per_job: int = 1,
    controls: list[str] = (),
    control_models: list[str] | None = None,
    seeds: list[int] | None = None,
    n_boot: int = N_BOOT,
    resume: bool = False,
) -> dict:
    """Run every row of ``run_specs`` for every seed; returns ``compare_collect``'s
    result plus "runs" (one entry per CV run), "skipped", "wall_s", "date".

    ``seeds`` (default: ``base.cv.seed`` alone) each set the folds, the
    initialisation and the data order (``seeded``); every row of a seed runs on
    that seed's folds. Runs go seed by seed, rows in ``run_specs`` order. With
    ``budget_s``, no new run starts once that many seconds have passed; the runs
    left out are listed under "skipped". ``jobs`` > 1 runs that many CV runs at
    once in worker processes (``threads_per_job`` torch threads each; CPU only),
    each reloading the data set from ``clips.root``. With ``resume``, a run
    already finished under ``out_dir`` with the same config is read back, not
    trained again (and never skipped for the budget).
    """
    out = Path(out_dir)
    specs = run_specs(models, losses, controls=controls, control_models=control_models)
    seeds = [base.cv.seed] if seeds is None else list(seeds)
    runs = [(seed, spec) for seed in seeds for spec in specs]
    start = time.perf_counter()
    skipped: list[str] = []
    results: dict[tuple[int, RunSpec], dict] = {}

    def skip(seed: int, spec: RunSpec) -> bool:
        if resume:
            found = run_finished(
                base, spec, seed, model_kwargs.get(spec.model, {}), out
            )
            if found is not None:
                record((seed, spec), found)
                return True
        over = budget_s is not None and time.perf_counter() - start > budget_s
        if over:
            skipped.append(f"{spec.label}/{spec.loss} (seed {seed})")
        return over

    def record(key: tuple[int, RunSpec], run: dict) -> None:
        # every finished run at once, so a crash later loses no training
        results[key] = run
        out.mkdir(parents=True, exist_ok=True)
        done = [results[r] for r in runs if r in results]
        (out / "runs.json").write_text(json.dumps(done, indent=1) + "\n")

    if jobs <= 1:
        for seed, spec in runs:
            if not skip(seed, spec):
                kwargs = model_kwargs.get(spec.model, {})
                record((seed, spec), _run_one(clips, base, spec, seed, kwargs, out))
    else:
        if base.runtime.device not in ("cpu", "auto") or torch.cuda.is_available():
            raise ValueError("jobs > 1 is for CPU runs; use jobs=1 on a GPU")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_worker_init,
            initargs=(str(clips.root), clips.speed_names, threads_per_job),
        ) as pool:
            pending = list(runs)
            running = {}
            while pending or running:
                while pending and len(running) < jobs:
                    seed, spec = pending.pop(0)
                    if skip(seed, spec):
                        continue
                    kwargs = model_kwargs.get(spec.model, {})
                    future = pool.submit(
                        _worker_run, base, spec, seed, kwargs, str(out)
                    )
                    running[future] = (seed, spec)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    record(running.pop(future), future.result())
    done_runs = [results[r] for r in runs if r in results]
    result = compare_collect(
        clips=clips, base=base, specs=specs, seeds=seeds, runs=done_runs, n_boot=n_boot
    )
    return result | {
        "runs": done_runs,
        "specs": [dataclasses.asdict(s) for s in specs],
        "skipped": skipped,
        "wall_s": time.perf_counter() - start,
        "device": str(done_runs[0]["device"]) if done_runs else "",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "threads_per_run": threads_per_job if jobs > 1 else torch.get_num_threads(),
    }


def _pooled(per_fold: list[dict]) -> tuple[dict, dict]:
    rows = [{k: v for k, v in r.items() if isinstance(v, float)} for r in per_fold]
    return mean_std(rows)


def compare_collect(
    *,
    clips: ClipSet,
    base: Config,
    specs: list[RunSpec],
    seeds: list[int],
    runs: list[dict],
    n_boot: int = N_BOOT,
    level: float = LEVEL,
) -> dict:
    """The table from finished runs: per row, the mean and std over every
    seed's test folds, each seed's EMD, and the paired difference to the speed-
    only kNN of the same seed's folds (``modeling.paired``; None without speed
    features), under the checkpoint rule and, where run, the second rule, and
    the rows' differences to each other (``_pairs``).

    Every interval resamples seeds and patients, and the intervals are one
    family: each is at Bonferroni's ``family_level(m, level)`` for the m
    intervals of the result (the speed-only kNN against itself is not one), with
    enough resamples for it (``family_n_boot``); ``family`` records m, ``level``
    and each interval's level."""
    targets = clips.targets.numpy().astype(np.float64)
    folds = [folds_for(clips, seeded(base, s)) for s in seeds]
    refs = [
        reference_predictions(clips, f, seed=s)
        for s, f in zip(seeds, folds, strict=True)
    ]
    patients = np.asarray(clips.patient_ids)
    reference = None
    if any(r["name"] == SPEED_KNN_NAME for r in refs[0]):
        reference = np.stack(
            [
                emd_per_clip(
                    next(r for r in rs if r["name"] == SPEED_KNN_NAME)["oof"], targets
                )
                for rs in refs
            ]
        )

    # every interval is computed at the end, once the family's size is known
    pending: list[tuple[dict, str, np.ndarray, np.ndarray]] = []

    def delta(per_clip: np.ndarray, holder: dict, key: str = "delta") -> None:
        holder[key] = None
        if reference is not None:
            pending.append((holder, key, per_clip, reference))

    rows, scores, same_alt = [], {}, []
    for spec in specs:
        done = {
            r["seed"]: r
            for r in runs
            if (r["label"], r["loss"]) == (spec.label, spec.loss)
        }
        if not done:
            continue
        mean, std = _pooled([m for r in done.values() for m in r["test"]])
        row = {
            "model": spec.label,
            "registry_model": spec.model,
            "loss": spec.loss,
            "control": spec.control,
            "seeds": sorted(done),
            "mean": mean,
            "std": std,
            "per_seed_emd": [
                done[s]["mean"]["emd"] if s in done else None for s in seeds
            ],
        }
        per_clip = np.full((len(seeds), len(clips)), np.nan)
        per_fold = []
        for i, s in enumerate(seeds):
            if s in done:
                pred = oof_predictions(done[s]["dir"], clips)
                per_clip[i] = emd_per_clip(pred, targets)
                per_fold += fold_metrics(pred, targets, folds[i])
        row["grades"] = grade_figures(per_fold)
        delta(per_clip, row)
        scores[spec.label, spec.loss] = per_clip
        if all(r["test_alt"] for r in done.values()):
            row["selection_alt"] = next(iter(done.values()))["selection_alt"]
            row["mean_alt"], row["std_alt"] = _pooled(
                [m for r in done.values() for m in r["test_alt"]]
            )
            alt = np.full((len(seeds), len(clips)), np.nan)
            for i, s in enumerate(seeds):
                if s in done:
                    alt[i] = oof_emd(done[s]["dir"], clips, alt=True)
            if np.array_equal(alt, per_clip, equal_nan=True):
                same_alt.append(row)  # the same checkpoints: the same interval
            else:
                delta(alt, row, "delta_alt")
        rows.append(row)
    references = []
    for j, first in enumerate(refs[0]):
        mean, std = _pooled([m for rs in refs for m in rs[j]["folds"]])
        per_clip = np.stack([emd_per_clip(rs[j]["oof"], targets) for rs in refs])
        ref_row = {
            "name": first["name"],
            "grades": grade_figures([m for rs in refs for m in rs[j]["folds"]]),
            "mean": mean,
            "std": std,
            "per_seed_emd": [
                float(np.mean([m["emd"] for m in rs[j]["folds"]])) for rs in refs
            ],
            "k": [[m["k"] for m in rs[j]["folds"]] for rs in refs]
            if "k" in first["folds"][0]
            else None,
        }
        references.append(ref_row)
        if first["name"] == SPEED_KNN_NAME:  # the reference itself: no interval
            ref_row["delta"] = paired_delta(
                per_clip, per_clip, patients=patients, folds=folds, n_boot=1
            )
        else:
            delta(per_clip, ref_row)
    pairs = _pairs(rows, scores)
    for pair in pairs:
        a, b = pair.pop("scores")
        pending.append((pair, "delta", a, b))
    each_level = family_level(max(len(pending), 1), level)
    n_boot = family_n_boot(each_level, n_boot)
    for holder, key, a, b in pending:
        holder[key] = paired_delta(
            a, b, patients=patients, folds=folds, n_boot=n_boot, level=each_level
        )
    for row in same_alt:
        row["delta_alt"] = row["delta"]
    baseline = references[0]
    return {
        "rows": rows,
        "pairs": pairs,
        "family": {"n_intervals": len(pending), "level": level, "each": each_level},
        "baseline": {
            k: baseline[k] for k in ("mean", "std", "per_seed_emd", "delta", "grades")
        },
        "references": references[1:],
        "seeds": list(seeds),
        "n_boot": n_boot,
    }


def _pairs(rows: list[dict], scores: dict) -> list[dict]:
    """The rows to compare with each other: each control minus its own model
    (what the removed input was worth) and every pair of models of one loss,
    with their per-clip scores (the intervals are computed with the family)."""
    pairs = []
    models = [r for r in rows if r["control"] == "none"]
    for r in rows:
        if r["control"] != "none":
            own = next(
                (
                    m
                    for m in models
                    if (m["model"], m["loss"])
                    == (r["model"].rsplit(" [", 1)[0], r["loss"])
                ),
                None,
            )
            if own is not None:
                pairs.append((r, own))
    pairs += [
        (a, b)
        for i, a in enumerate(models)
        for b in models[i + 1 :]
        if a["loss"] == b["loss"]
    ]
    return [
        {
            "a": a["model"],
            "b": b["model"],
            "loss": a["loss"],
            "scores": (scores[a["model"], a["loss"]], scores[b["model"], b["loss"]]),
        }
        for a, b in pairs
    ]


def best_row(result: dict, *, video_only: bool = False, image_only: bool = False):
    """The row with the lowest mean EMD (optionally among video or image models)."""
    rows = [r for r in result["rows"] if r.get("control", "none") == "none"]
    if video_only:
        rows = [
            r for r in rows if r.get("registry_model", r["model"]) not in IMAGE_MODELS
        ]
    if image_only:
        rows = [r for r in rows if r.get("registry_model", r["model"]) in IMAGE_MODELS]
    if not rows:
        return None
    return min(rows, key=lambda r: r["mean"]["emd"])


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_describe(device: str, threads: int | None = None) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    threads = threads or torch.get_num_threads()
    return (
        f"CPU {cpu_name()} ({platform.machine()}, {os.cpu_count()} cores), "
        f"{threads} torch thread(s) per CV run (torch {torch.__version__})"
    )
