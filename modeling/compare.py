"""The papers' comparison (Table 1 of Nakagawa et al.), reproduced on our data.

Every backbone x loss runs the same protocol (``modeling.training.run_cv``: the
same patient-grouped stratified folds for every row, checkpoint chosen on a
validation split of the training patients) and the table reports fold means ± std,
with the "training-set mean distribution" baseline as the floor to beat.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from modeling.config import Config, LossConfig, ModelConfig
from modeling.data import ClipSet
from modeling.training import run_cv

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


def model_kwargs_fit(kwargs: dict, cfg: Config) -> dict:
    """Kwargs with the input geometry (num_frames, img_size) set from ``cfg.data``."""
    fitted = dict(kwargs)
    if "num_frames" in fitted:
        fitted["num_frames"] = cfg.data.n_frames
    if "img_size" in fitted:
        fitted["img_size"] = cfg.data.size
    return fitted


def compare_run(
    *,
    clips: ClipSet,
    base: Config,
    models: list[str],
    losses: list[str],
    model_kwargs: dict[str, dict],
    out_dir: str | Path,
    budget_s: float | None = None,
) -> dict:
    """Run every model x loss; returns {"rows": [...], "baseline": {...}, ...}.

    With ``budget_s``, no new run starts once that many seconds have passed; the
    runs left out are listed under "skipped".
    """
    out = Path(out_dir)
    rows, baseline, skipped = [], None, []
    start = time.perf_counter()
    for loss in losses:  # every model with the first loss before the next loss
        for name in models:
            if budget_s is not None and time.perf_counter() - start > budget_s:
                skipped.append(f"{name}/{loss}")
                continue
            cfg = dataclasses.replace(
                base,
                model=ModelConfig(
                    name=name, kwargs=model_kwargs_fit(model_kwargs.get(name, {}), base)
                ),
                loss=LossConfig(name=loss),
            )
            summary = run_cv(cfg=cfg, clips=clips, out_dir=out / f"{name}__{loss}")
            baseline = summary["baseline_mean_distribution"]
            rows.append(
                {
                    "model": name,
                    "loss": loss,
                    "mean": summary["mean"],
                    "std": summary["std"],
                    "wall_s": summary["wall_s"],
                }
            )
    return {
        "rows": rows,
        "baseline": baseline,
        "skipped": skipped,
        "wall_s": time.perf_counter() - start,
        "device": str(summary["device"]) if rows else "",
    }


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
    entries.append((BASELINE_NAME, "-", base["mean"], base["std"]))
    best = {}
    for key, _, _, direction in TABLE_COLUMNS:
        values = [e[2][key] for e in entries]
        best[key] = min(values) if direction == "min" else max(values)
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
        "best value of each column is bold.\n\n" + "\n".join(lines) + "\n"
    )


def machine_describe(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def context_describe(
    *, clips: ClipSet, base: Config, result: dict, extra: dict
) -> dict:
    d, o, cv = base.data, base.optim, base.cv
    return {
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Machine": machine_describe(result.get("device", "")),
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
