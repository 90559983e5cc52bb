"""Training and evaluation: plain functions over an in-memory clip set.

``run_cv`` runs the papers' protocol (patient-grouped stratified k-fold, checkpoint
chosen on a validation split of the training patients), ``run_fold`` one fold,
``train_one_epoch`` and ``evaluate`` one pass each. Softmax is applied here, once,
to model logits; models never apply it.

``run_cv`` is ``cv_prepare`` + ``run_fold`` per fold + ``cv_finish``: a job system
can run the folds as separate processes (each reloading the folds from
``folds.json``) and finish once every fold is written. ``on_progress`` receives one
event dict per training step and per epoch; raising ``TrainingCancelled`` from it
stops training between steps.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from modeling import checkpoint as ckpt
from modeling.augment import batch_gather, batch_prepare, frame_indices
from modeling.config import Config, config_dump
from modeling.controls import control_apply
from modeling.cv import (
    Fold,
    balanced_indices,
    fold_overlap_check,
    folds_make,
    stratified_group_split,
)
from modeling.data import ClipSet, SpeedScaler
from modeling.losses import loss_get
from modeling.metrics import metrics_all, top_hi_segments
from modeling.models.weights import model_normalization
from modeling.optim import optimizer_make
from modeling.results import (
    FoldResult,
    baseline_mean_distribution,
    fold_dirname,
    json_write,
    mean_std,
    oof_write,
)
from modeling.runtime import autocast, compute_dtype, device_resolve, model_compile

ProgressFn = Callable[[dict], None]


class TrainingCancelled(Exception):
    """Raised by an ``on_progress`` callback to stop training between two steps."""


def _no_progress(event: dict) -> None:
    return None


@dataclass
class DeviceData:
    """Tensors for one fold: videos (maybe on the device), standardised speed."""

    videos: torch.Tensor  # uint8 (N, T, H, W, C)
    targets: torch.Tensor  # float (N, 5) on the device
    speed: torch.Tensor  # float (N, F) on the device, train-fold standardised
    modes: np.ndarray

    @property
    def n_source_frames(self) -> int:
        return self.videos.shape[1]


def _videos_place(clips: ClipSet, cfg: Config, device: torch.device) -> torch.Tensor:
    where = cfg.data.store_on_device
    if device.type != "cuda" or where == "never":
        return clips.videos
    if where == "auto":
        free, _ = torch.cuda.mem_get_info(device)
        if clips.videos.numel() > free // 3:
            return clips.videos
    return clips.videos.to(device, non_blocking=True)


def device_data(
    clips: ClipSet, scaler: SpeedScaler, cfg: Config, device: torch.device
) -> DeviceData:
    return DeviceData(
        videos=_videos_place(clips, cfg, device),
        targets=clips.targets.to(device),
        speed=scaler.transform(clips.speed_raw).to(device),
        modes=clips.modes,
    )


def fold_data(
    clips: ClipSet,
    scaler: SpeedScaler,
    cfg: Config,
    device: torch.device,
    fold: Fold,
) -> DeviceData:
    """A fold's tensors as its model sees them: ``device_data`` with the run's
    negative control (``cfg.data.control``) applied to every split. The one way
    a model (trained here, a distilled student, its teacher) gets its inputs."""
    return control_apply(
        device_data(clips, scaler, cfg, device),
        fold=fold,
        patient_ids=clips.patient_ids,
        control=cfg.data.control,
        seed=cfg.runtime.seed + 7919 * (fold.index + 1),
    )


def batch_make(
    data: DeviceData,
    idx: np.ndarray,
    cfg: Config,
    device: torch.device,
    *,
    train: bool,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(video float (B,3,T,S,S), speed (B,F), target (B,5)) on the device."""
    clip_idx = torch.as_tensor(idx, dtype=torch.long)
    jitter = train and cfg.augment.enabled and cfg.augment.temporal_jitter
    frames_idx = frame_indices(
        data.n_source_frames,
        cfg.data.n_frames,
        batch=len(idx),
        jitter=jitter,
        generator=generator,
        device=generator.device if generator is not None else "cpu",
    )
    frames = batch_gather(data.videos, clip_idx, frames_idx, device)
    video = batch_prepare(
        frames,
        size=cfg.data.size,
        augment=cfg.augment if train else None,
        generator=generator,
        normalization=model_normalization(
            cfg.model.name, cfg.data.normalization, cfg.model.kwargs.get("weights")
        ),
    )
    clip_idx = clip_idx.to(device)
    dtype = compute_dtype(cfg)
    return video.to(dtype), data.speed[clip_idx].to(dtype), data.targets[clip_idx]


def loss_compute(
    model: nn.Module,
    video: torch.Tensor,
    speed: torch.Tensor,
    target: torch.Tensor,
    loss_name: str,
) -> torch.Tensor:
    """Mean over heads of loss(softmax(logits), target), plus the auxiliary loss."""
    loss_fn = loss_get(loss_name)
    if hasattr(model, "training_outputs"):
        heads, aux = model.training_outputs(video, speed)
    else:
        heads, aux = [model(video, speed)], None
    loss = sum(loss_fn(torch.softmax(h.float(), dim=-1), target) for h in heads)
    loss = loss / len(heads)
    return loss if aux is None else loss + aux


def _epoch_order(
    train_idx: np.ndarray, modes: np.ndarray, cfg: Config, gen: torch.Generator
) -> np.ndarray:
    if cfg.cv.balanced_sampling:
        pos = balanced_indices(modes[train_idx], len(train_idx), generator=gen)
        return train_idx[pos]
    return train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]


def train_one_epoch(
    *,
    model: nn.Module,
    data: DeviceData,
    train_idx: np.ndarray,
    optimizer: torch.optim.Optimizer,
    cfg: Config,
    device: torch.device,
    sample_gen: torch.Generator,
    aug_gen: torch.Generator,
    on_step: ProgressFn = _no_progress,
) -> dict[str, float]:
    """One pass over the training clips; returns mean loss and clips per second.

    ``on_step({"step", "steps"})`` runs after every optimiser step (it may raise
    ``TrainingCancelled``)."""
    model.train()
    order = _epoch_order(train_idx, data.modes, cfg, sample_gen)
    bs = cfg.optim.batch_size
    n_batches = max(1, len(order) // bs)  # drop a ragged last batch (BatchNorm)
    total, start = 0.0, time.perf_counter()
    for b in range(n_batches):
        idx = order[b * bs : (b + 1) * bs]
        video, speed, target = batch_make(
            data, idx, cfg, device, train=True, generator=aug_gen
        )
        with autocast(cfg, device):
            loss = loss_compute(model, video, speed, target, cfg.loss.name)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        total += loss.detach()
        on_step({"step": b + 1, "steps": n_batches})
    seconds = time.perf_counter() - start
    mean_loss = float(total) / n_batches  # one host sync per epoch
    if not math.isfinite(mean_loss):
        raise FloatingPointError(
            "training loss became NaN/inf; lower optim.lr or set optim.grad_clip"
        )
    return {"loss": mean_loss, "clips_per_s": n_batches * bs / max(seconds, 1e-9)}


@torch.no_grad()
def evaluate(
    *,
    model: nn.Module,
    data: DeviceData,
    idx: np.ndarray,
    cfg: Config,
    device: torch.device,
    frames: bool = True,
) -> np.ndarray:
    """Predicted distributions (len(idx), 5) without augmentation. A model that
    scores frames (``score_frames``: the per-frame image protocol) gives
    (len(idx), T, 5) instead, each of a clip's T source frames predicted on its
    own, unless ``frames`` is False (one distribution per clip, as served)."""
    model.eval()
    frames = frames and getattr(model, "score_frames", False)
    if frames:  # every source frame, not the n_frames a clip model samples
        cfg = dataclasses.replace(
            cfg, data=dataclasses.replace(cfg.data, n_frames=data.n_source_frames)
        )
    out = []
    bs = cfg.runtime.eval_batch_size
    for start in range(0, len(idx), bs):
        video, speed, _ = batch_make(
            data, idx[start : start + bs], cfg, device, train=False
        )
        with autocast(cfg, device):
            logits = (
                model.frame_outputs(video, speed) if frames else model(video, speed)
            )
        out.append(torch.softmax(logits.float(), dim=-1).cpu())
    return torch.cat(out).numpy().astype(np.float64)


def model_for(cfg: Config, n_speed: int, device: torch.device) -> nn.Module:
    if "n_speed" in cfg.model.kwargs:
        raise ValueError(
            "model.kwargs must not set n_speed; it follows data.speed_features"
        )
    model = ckpt.model_create(cfg.model.name, n_speed=n_speed, **cfg.model.kwargs)
    return model.to(device, dtype=compute_dtype(cfg))


def _selection_value(metrics: dict, cfg: Config, rule: str | None = None) -> float:
    name = rule or cfg.cv.selection_metric
    return metrics[cfg.loss.name if name == "loss" else name]


def selection_rules(cfg: Config) -> list[str]:
    """The checkpoint rules a run keeps: ``cv.selection_metric`` first, then
    ``cv.also_select_by`` unless it is "none"."""
    rules = [cfg.cv.selection_metric]
    if cfg.cv.also_select_by != "none":
        rules.append(cfg.cv.also_select_by)
    return rules


def train_epochs(
    *,
    model,
    data,
    fold: Fold,
    cfg: Config,
    device,
    label: str,
    train_data=None,
    on_progress: ProgressFn = _no_progress,
    also: dict | None = None,
) -> tuple[dict, int, dict, list]:
    """Train, validating every ``eval_every`` epochs; returns the best state.

    Gradient steps read ``train_data`` (default ``data``; distillation passes
    soft targets there); validation always scores against ``data``'s targets.
    Returns (best state on the CPU, best epoch, its validation metrics, history)
    under ``cv.selection_metric``; with ``also`` (a dict), ``also[rule]`` gets
    the same triple for every rule of ``selection_rules(cfg)``.
    ``on_progress`` gets ``{"event": "step", "fold", "epoch", "epochs", "step",
    "steps"}`` after each step and ``{"event": "epoch", ..., "train_loss", "val"}``
    after each epoch (``run_fold`` adds ``{"event": "stage", "stage": ...}`` when
    it starts testing and saving).
    """
    optimizer, scheduler = optimizer_make(model, cfg)
    seed = cfg.runtime.seed + 7919 * (fold.index + 1)
    sample_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed)
    train_model = model_compile(model, cfg) if cfg.runtime.compile else model
    rules = selection_rules(cfg)
    best = dict.fromkeys(rules, (math.inf, 0, None, {}))
    history = []
    epochs = tqdm(
        range(1, cfg.optim.epochs + 1),
        desc=label,
        disable=not cfg.runtime.progress,
        file=sys.stderr,
        leave=False,
    )
    where = {"fold": fold.index, "epochs": cfg.optim.epochs}
    for epoch in epochs:

        def on_step(step: dict, epoch: int = epoch) -> None:
            on_progress({"event": "step", **where, "epoch": epoch, **step})

        stats = train_one_epoch(
            model=train_model,
            data=data if train_data is None else train_data,
            train_idx=fold.train,
            optimizer=optimizer,
            cfg=cfg,
            device=device,
            sample_gen=sample_gen,
            aug_gen=aug_gen,
            on_step=on_step,
        )
        scheduler.step()
        row = {"epoch": epoch, "train_loss": stats["loss"], **stats}
        del row["loss"]
        if epoch % cfg.cv.eval_every == 0 or epoch == cfg.optim.epochs:
            probs = evaluate(
                model=model, data=data, idx=fold.val, cfg=cfg, device=device
            )
            val = metrics_all(probs, data.targets[fold.val].cpu().numpy())
            row["val"] = val
            state = None
            for rule in rules:
                value = _selection_value(val, cfg, rule)
                if value < best[rule][0]:
                    state = state or {
                        k: v.detach().cpu().clone()
                        for k, v in model.state_dict().items()
                    }
                    best[rule] = (value, epoch, state, val)
            value = _selection_value(val, cfg)
            epochs.set_postfix(loss=f"{stats['loss']:.4f}", val=f"{value:.4f}")
        history.append(row)
        on_progress({"event": "epoch", **where, **row})
    if also is not None:
        also.update({rule: (b[2], b[1], b[3]) for rule, b in best.items()})
    _, best_epoch, state, val_metrics = best[rules[0]]
    return state, best_epoch, val_metrics, history


def run_fold(
    *,
    cfg: Config,
    clips: ClipSet,
    fold: Fold,
    out_dir: Path,
    device: torch.device,
    on_progress: ProgressFn = _no_progress,
) -> FoldResult:
    """Train one fold, choose the checkpoint on its validation split, test it.

    Writes ``fold_<i>/`` (``final/`` for index -1): the checkpoint, metrics.json
    and test_predictions.json (what ``fold_result_load`` reads back)."""
    torch.manual_seed(cfg.runtime.seed + fold.index)
    scaler = SpeedScaler.fit(clips.speed_raw[fold.train], clips.speed_names)
    data = fold_data(clips, scaler, cfg, device, fold)
    model = model_for(cfg, len(clips.speed_names), device)
    label = f"fold {fold.index}" if fold.index >= 0 else "full"
    selected: dict = {}
    state, best_epoch, val_metrics, history = train_epochs(
        model=model,
        data=data,
        fold=fold,
        cfg=cfg,
        device=device,
        label=label,
        on_progress=on_progress,
        also=selected,
    )
    metrics = {"val": val_metrics, "best_epoch": best_epoch}
    on_progress({"event": "stage", "stage": "evaluating", "fold": fold.index})
    probs, probs_alt = np.zeros((0, 5)), None
    rules = selection_rules(cfg)
    if len(fold.test) and len(rules) > 1:
        alt_state, metrics["best_epoch_alt"], _ = selected[rules[1]]
        model.load_state_dict(alt_state)
        probs_alt = evaluate(
            model=model, data=data, idx=fold.test, cfg=cfg, device=device
        )
        test_targets = data.targets[fold.test].cpu().numpy()
        metrics["test_alt"] = metrics_all(probs_alt, test_targets)
    model.load_state_dict(state)
    if len(fold.test):
        probs = evaluate(model=model, data=data, idx=fold.test, cfg=cfg, device=device)
        metrics["test"] = metrics_all(probs, data.targets[fold.test].cpu().numpy())
    fold_dir = Path(out_dir) / fold_dirname(fold.index)
    on_progress({"event": "stage", "stage": "saving", "fold": fold.index})
    ckpt.checkpoint_save(
        fold_dir / "checkpoint",
        model=model,
        cfg=cfg,
        n_speed=len(clips.speed_names),
        scaler=scaler,
        fold=fold.index,
        epoch=best_epoch,
        metrics=metrics,
        dataset_sha256=clips.manifest_sha256,
    )
    json_write(fold_dir / "metrics.json", {**metrics, "history": history})
    ids = [clips.clip_ids[i] for i in fold.test]
    tested = {
        "clip_ids": ids,
        "probs": probs.round(6).tolist(),
        "best_epoch": best_epoch,
    }
    if probs_alt is not None:
        tested["probs_alt"] = probs_alt.round(6).tolist()
    json_write(fold_dir / "test_predictions.json", tested)
    return FoldResult(fold.index, fold.test, probs, metrics, best_epoch, probs_alt)


def folds_for(clips: ClipSet, cfg: Config) -> list[Fold]:
    """The protocol's folds for ``clips`` under ``cfg.cv`` (same seed, same folds)."""
    return folds_make(
        clips.modes,
        clips.patient_ids,
        k=cfg.cv.k,
        seed=cfg.cv.seed,
        val_fraction=cfg.cv.val_fraction,
    )


def cv_prepare(*, cfg: Config, clips: ClipSet, out_dir: str | Path) -> list[Fold]:
    """Write config.yaml and folds.json under ``out_dir``; returns the folds."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_dump(cfg, out / "config.yaml")
    folds = folds_for(clips, cfg)
    fold_overlap_check(folds, clips.patient_ids)
    ids = np.array(clips.clip_ids)
    json_write(
        out / "folds.json",
        {
            f"fold_{f.index}": {
                s: ids[getattr(f, s)].tolist() for s in ("train", "val", "test")
            }
            for f in folds
        },
    )
    return folds


def cv_finish(
    *,
    cfg: Config,
    clips: ClipSet,
    folds: list[Fold],
    results: list[FoldResult],
    out_dir: str | Path,
    device: str,
    wall_s: float,
) -> dict:
    """oof_predictions.jsonl and metrics.json from every fold's result."""
    out = Path(out_dir)
    if sorted(r.index for r in results) != sorted(f.index for f in folds):
        raise ValueError(
            f"cv_finish needs a result for every fold {[f.index for f in folds]}, "
            f"got {sorted(r.index for r in results)}"
        )
    results = sorted(results, key=lambda r: r.index)
    oof = oof_write(out / "oof_predictions.jsonl", clips, results)
    targets = clips.targets.numpy().astype(np.float64)
    per_fold = [r.metrics["test"] for r in results]
    mean, std = mean_std(per_fold)
    alternative = {}
    if all(r.test_probs_alt is not None for r in results):
        alt = [dataclasses.replace(r, test_probs=r.test_probs_alt) for r in results]
        oof_write(out / "oof_predictions_alt.jsonl", clips, alt)
        alt_mean, alt_std = mean_std([r.metrics["test_alt"] for r in results])
        alternative = {
            "selection_alt": selection_rules(cfg)[1],
            "mean_alt": alt_mean,
            "std_alt": alt_std,
        }
    base = baseline_mean_distribution(clips, folds)
    base_mean, base_std = mean_std(base)
    summary = {
        "model": cfg.model.name,
        "loss": cfg.loss.name,
        "k": cfg.cv.k,
        "n_clips": len(clips),
        "device": device,
        "wall_s": wall_s,
        "folds": [r.metrics for r in results],
        "mean": mean,
        "std": std,
        "oof": metrics_all(oof, targets),
        "oof_top_hi": top_hi_segments(oof, targets),
        "baseline_mean_distribution": {"mean": base_mean, "std": base_std},
        "control": cfg.data.control,
        **alternative,
    }
    json_write(out / "metrics.json", summary)
    return summary


def run_cv(
    *,
    cfg: Config,
    clips: ClipSet,
    out_dir: str | Path,
    on_progress: ProgressFn = _no_progress,
) -> dict:
    """The full protocol; writes config.yaml, folds.json, per-fold checkpoints,
    oof_predictions.jsonl and metrics.json under ``out_dir``; returns the metrics.
    """
    out = Path(out_dir)
    folds = cv_prepare(cfg=cfg, clips=clips, out_dir=out)
    device = device_resolve(cfg.runtime.device)
    start = time.perf_counter()
    results = [
        run_fold(
            cfg=cfg,
            clips=clips,
            fold=f,
            out_dir=out,
            device=device,
            on_progress=on_progress,
        )
        for f in folds
    ]
    return cv_finish(
        cfg=cfg,
        clips=clips,
        folds=folds,
        results=results,
        out_dir=out,
        device=str(device),
        wall_s=time.perf_counter() - start,
    )


def final_fold(clips: ClipSet, cfg: Config) -> Fold:
    """The final model's split: every clip trains but a patient-grouped validation
    part that picks the epoch (index -1, no test clips)."""
    n_parts = max(2, round(1 / cfg.cv.val_fraction))
    parts = stratified_group_split(
        clips.modes, clips.patient_ids, k=n_parts, seed=cfg.cv.seed
    )
    val = np.sort(parts[0])
    train = np.setdiff1d(np.arange(len(clips)), val)
    return Fold(index=-1, train=train, val=val, test=np.array([], dtype=int))


def train_final(
    *,
    cfg: Config,
    clips: ClipSet,
    out_dir: str | Path,
    on_progress: ProgressFn = _no_progress,
) -> FoldResult:
    """One model on every clip (validation split still patient-grouped) for use."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_dump(cfg, out / "config.yaml")
    device = device_resolve(cfg.runtime.device)
    return run_fold(
        cfg=cfg,
        clips=clips,
        fold=final_fold(clips, cfg),
        out_dir=out,
        device=device,
        on_progress=on_progress,
    )
