"""The papers' comparison (Table 1 of Nakagawa et al.), reproduced on our data.

Every backbone x loss runs the same protocol (``modeling.training.run_cv``: the
same patient-grouped stratified folds for every row, checkpoint chosen on a
validation split of the training patients) and the table reports fold means ± std,
with the "training-set mean distribution" baseline as the floor to beat.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import platform
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from modeling.config import Config, LossConfig, ModelConfig
from modeling.cv import Fold
from modeling.data import ClipSet, clipset_load
from modeling.metrics import emd_per_clip, metrics_all
from modeling.training import baseline_mean_distribution, folds_for, mean_std, run_cv

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
BASELINE_NAME = "train-set mean distribution"
SPEED_KNN_NAME = "speed features only (kNN)"
ORACLE_KNN_NAME = "true latent quality (kNN, synthetic oracle)"
SHAPE_KNN_NAME = "speed + true shape defect (kNN, synthetic)"
KNN_CHOICES = (5, 10, 20, 40)

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


def _run_one(
    clips: ClipSet, base: Config, name: str, loss: str, kwargs: dict, out: Path
) -> dict:
    cfg = dataclasses.replace(
        base,
        model=ModelConfig(name=name, kwargs=model_kwargs_fit(kwargs, base)),
        loss=LossConfig(name=loss),
    )
    summary = run_cv(cfg=cfg, clips=clips, out_dir=out / f"{name}__{loss}")
    return {
        "model": name,
        "loss": loss,
        "mean": summary["mean"],
        "std": summary["std"],
        "wall_s": summary["wall_s"],
        "device": summary["device"],
    }


_WORKER: dict = {}


def _worker_init(root: str, speed_features: list[str], threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["clips"] = clipset_load(root, speed_features=speed_features)


def _worker_run(base: Config, name: str, loss: str, kwargs: dict, out: str) -> dict:
    return _run_one(_WORKER["clips"], base, name, loss, kwargs, Path(out))


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
) -> dict:
    """Run every model x loss; returns {"rows": [...], "baseline": {...}, ...}.

    With ``budget_s``, no new run starts once that many seconds have passed; the
    runs left out are listed under "skipped". ``jobs`` > 1 runs that many CV runs
    at once in worker processes (``threads_per_job`` torch threads each; CPU
    only), each reloading the data set from ``clips.root``. Rows come back in
    the order of the runs, every model with the first loss before the next loss.
    """
    out = Path(out_dir)
    runs = [(name, loss) for loss in losses for name in models]
    start = time.perf_counter()
    skipped: list[str] = []
    results: dict[tuple[str, str], dict] = {}
    if jobs <= 1:
        for name, loss in runs:
            if budget_s is not None and time.perf_counter() - start > budget_s:
                skipped.append(f"{name}/{loss}")
                continue
            kwargs = model_kwargs.get(name, {})
            results[name, loss] = _run_one(clips, base, name, loss, kwargs, out)
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
                    name, loss = pending.pop(0)
                    if budget_s is not None and time.perf_counter() - start > budget_s:
                        skipped.append(f"{name}/{loss}")
                        continue
                    kwargs = model_kwargs.get(name, {})
                    future = pool.submit(
                        _worker_run, base, name, loss, kwargs, str(out)
                    )
                    running[future] = (name, loss)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    results[running.pop(future)] = future.result()
    rows = [results[r] for r in runs if r in results]
    folds = folds_for(clips, base)
    base_mean, base_std = mean_std(baseline_mean_distribution(clips, folds))
    return {
        "rows": rows,
        "baseline": {"mean": base_mean, "std": base_std},
        "references": reference_rows(clips, folds),
        "skipped": skipped,
        "wall_s": time.perf_counter() - start,
        "device": str(rows[0]["device"]) if rows else "",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "threads_per_run": threads_per_job if jobs > 1 else torch.get_num_threads(),
    }


def _standardise(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    mu, sd = x[fit].mean(0), x[fit].std(0)
    return (x - mu) / np.where(sd > 1e-12, sd, 1.0)


def knn_predict(
    x: np.ndarray, targets: np.ndarray, fit: np.ndarray, query: np.ndarray, k: int
) -> np.ndarray:
    """Mean target distribution of the ``k`` nearest ``fit`` clips of each query."""
    d = ((x[query][:, None, :] - x[fit][None, :, :]) ** 2).sum(-1)
    k = min(k, len(fit))
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return targets[fit][nearest].mean(1)


def knn_reference(
    features: np.ndarray, targets: np.ndarray, folds: list[Fold]
) -> list[dict]:
    """Per fold: test metrics of a k-nearest-neighbour predictor on ``features``.

    k is chosen among ``KNN_CHOICES`` by EMD on the fold's validation split
    (neighbours from its training split); the test clips then take their
    neighbours from training and validation clips together, as the models do
    with the selected checkpoint.
    """
    features = np.asarray(features, dtype=np.float64).reshape(len(targets), -1)
    rows = []
    for fold in folds:
        x = _standardise(features, fold.train)
        best_k = min(
            KNN_CHOICES,
            key=lambda k: emd_per_clip(
                knn_predict(x, targets, fold.train, fold.val, k), targets[fold.val]
            ).mean(),
        )
        seen = np.concatenate([fold.train, fold.val])
        x = _standardise(features, seen)
        pred = knn_predict(x, targets, seen, fold.test, best_k)
        rows.append(metrics_all(pred, targets[fold.test]) | {"k": best_k})
    return rows


def manifest_fields(clips: ClipSet, keys: tuple[str, ...]) -> dict:
    """Numeric per-clip manifest fields (e.g. the synthetic ground truth
    ``latent_quality``), each in clip order, or None unless every clip has it."""
    found = {}
    for key in keys:
        values = [record.extra.get(key) for record in clips.records]
        usable = len(values) == len(clips) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        found[key] = np.array(values, dtype=float) if usable else None
    return found


def reference_rows(clips: ClipSet, folds: list[Fold]) -> list[dict]:
    """Reference predictors on the same folds as the models: what the speed
    features alone give and, on synthetic data, what the speed plus the true
    shape defect (all an image model could add) and the true latent quality give.
    """
    targets = clips.targets.numpy().astype(np.float64)
    inputs = []
    speed = clips.speed_raw.numpy()
    if speed.shape[1] > 0:
        inputs.append((SPEED_KNN_NAME, speed))
    truth = manifest_fields(clips, ("shape_defect", "latent_quality"))
    shape, quality = truth["shape_defect"], truth["latent_quality"]
    if shape is not None and speed.shape[1] > 0:
        inputs.append((SHAPE_KNN_NAME, np.column_stack([speed, shape])))
    if quality is not None:
        inputs.append((ORACLE_KNN_NAME, quality))
    rows = []
    for name, features in inputs:
        per_fold = knn_reference(features, targets, folds)
        mean, std = mean_std(per_fold)
        rows.append(
            {"name": name, "mean": mean, "std": std, "k": [r["k"] for r in per_fold]}
        )
    return rows


def best_row(result: dict, *, video_only: bool = False, image_only: bool = False):
    """The row with the lowest mean EMD (optionally among video or image models)."""
    rows = result["rows"]
    if video_only:
        rows = [r for r in rows if r["model"] not in IMAGE_MODELS]
    if image_only:
        rows = [r for r in rows if r["model"] in IMAGE_MODELS]
    if not rows:
        return None
    return min(rows, key=lambda r: r["mean"]["emd"])


def _cell(mean: float, std: float, style: str) -> str:
    if style == "sci":
        exponent = math.floor(math.log10(abs(mean))) if mean else 0
        scale = 10.0**exponent
        return f"{mean / scale:.3f}e{exponent} ± {std / scale:.3f}e{exponent}"
    return f"{mean:.3f} ± {std:.3f}"


def compare_markdown(result: dict, *, context: dict) -> str:
    """Table-1-style markdown; the best value per column is in bold."""
    entries = [(r["model"], r["loss"], r["mean"], r["std"]) for r in result["rows"]]
    base = result["baseline"]
    references = [(BASELINE_NAME, "-", base["mean"], base["std"])]
    references += [
        (r["name"], "-", r["mean"], r["std"]) for r in result.get("references", [])
    ]
    best = {}
    for key, _, _, direction in TABLE_COLUMNS:
        values = [e[2][key] for e in entries] or [r[2][key] for r in references]
        best[key] = min(values) if direction == "min" else max(values)
    entries += references
    header = "| Model | Loss | " + " | ".join(c[1] for c in TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_COLUMNS) + 2)]
    for model, loss, mean, std in entries:
        cells = []
        for key, _, style, _ in TABLE_COLUMNS:
            text = _cell(mean[key], std[key], style)
            cells.append(f"**{text}**" if mean[key] == best[key] else text)
        lines.append(f"| {model} | {loss} | " + " | ".join(cells) + " |")
    if result.get("skipped"):
        context = {**context, "Not run (time budget)": ", ".join(result["skipped"])}
    ctx = "\n".join(f"- {k}: {v}" for k, v in context.items())
    return (
        "# Model comparison (Table 1 of Nakagawa et al., on synthetic data)\n\n"
        "Generated by `benchmarks/compare_models.py`; do not edit by hand.\n\n"
        f"{ctx}\n\n"
        "Fold mean ± std over the held-out test folds. EMD = mean over grades of "
        "squared CDF differences (eq. 6 of Nakagawa et al.); JSD and CE in nats; "
        "HI = histogram intersection; Macro HI = mean HI per true grade-mode "
        "class; Macro F1 and Mode acc. score the grade mode (ties to the better "
        "grade). Lower is better for EMD/MSE/JSD/CE, higher for the rest; the "
        "best model value of each column is bold. The last rows are references "
        "on the same folds, not models: the training-set mean distribution (the "
        "floor to beat), a k-nearest-neighbour predictor on the speed features "
        "alone (what the clip must add to), and on synthetic data one on the "
        "speed plus the true shape defect (what a perfect reader of single "
        "frames could add) and one on the true latent quality (about the best "
        "any model can do, given the panel's own noise); their k is chosen on "
        "each fold's validation split.\n\n" + "\n".join(lines) + "\n"
    )


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


def context_describe(
    *, clips: ClipSet, base: Config, result: dict, extra: dict
) -> dict:
    d, o, cv = base.data, base.optim, base.cv
    return {
        "Date": result.get("date") or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Machine": machine_describe(
            result.get("device", ""), result.get("threads_per_run")
        ),
        "Data": (
            f"{len(clips)} clips, {len(set(clips.patient_ids))} patients, "
            f"{clips.videos.shape[1]} frames of {clips.videos.shape[2]} px; "
            f"model input {d.n_frames} frames of {d.size} px; speed features "
            f"{', '.join(d.speed_features) or 'none'}"
        ),
        "Protocol": (
            f"{cv.k}-fold CV stratified by grade mode, grouped by patient (seed "
            f"{cv.seed}); checkpoint chosen by validation {cv.selection_metric} on "
            f"{cv.val_fraction:.0%} of the training patients; class-balanced "
            f"sampling {'on' if cv.balanced_sampling else 'off'}"
        ),
        "Training": (
            f"{o.optimizer.upper()} lr {o.lr:g}, momentum {o.momentum:g}, weight "
            f"decay {o.weight_decay:g}, {o.epochs} epochs, batch {o.batch_size}, "
            f"scheduler {o.scheduler}; augmentation "
            f"{'on' if base.augment.enabled else 'off'}; amp {base.runtime.amp}"
        ),
        "Wall time": f"{result['wall_s']:.0f} s for the whole table",
        **extra,
    }
