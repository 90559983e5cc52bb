"""Prediction: a checkpoint applied to every clip of a manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modeling import checkpoint as ckpt
from modeling.config import Config
from modeling.data import SpeedScaler, clipset_load
from modeling.grades import GRADES
from modeling.metrics import metrics_all, top_hi_segments
from modeling.runtime import device_resolve
from modeling.training import device_data, evaluate, json_write


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read once (model in eval mode on ``device``), for predicting
    several manifests without loading it again for each."""

    model: nn.Module
    meta: dict
    cfg: Config
    scaler: SpeedScaler
    device: torch.device


def checkpoint_open(
    checkpoint: str | Path, *, device: str = "auto"
) -> LoadedCheckpoint:
    """Load ``checkpoint`` onto ``device`` ("auto": the best one here)."""
    dev = device_resolve(device)
    model, meta, cfg, scaler = ckpt.checkpoint_load(checkpoint, device=dev)
    return LoadedCheckpoint(model=model, meta=meta, cfg=cfg, scaler=scaler, device=dev)


def predict(
    *,
    checkpoint: str | Path | LoadedCheckpoint,
    data: str | Path,
    out: str | Path,
    device: str = "auto",
    clip_ids: list[str] | None = None,
) -> dict:
    """Predict every clip of a manifest (or only ``clip_ids``) with a checkpoint
    (a path, loaded here on ``device``, or one ``checkpoint_open`` loaded).

    Writes ``predictions.jsonl`` (clip_id, pred, pred_mode) under ``out``; when the
    clips predicted have votes, also ``metrics.json``. Returns the metrics (or {}).
    A model scored per frame (``score_frames``) is scored so here too, as in its
    run; its ``pred`` is the mean of its frames' distributions.
    """
    if not isinstance(checkpoint, LoadedCheckpoint):
        checkpoint = checkpoint_open(checkpoint, device=device)
    model, meta, cfg, scaler = (
        checkpoint.model,
        checkpoint.meta,
        checkpoint.cfg,
        checkpoint.scaler,
    )
    dev = checkpoint.device
    clips = clipset_load(data, speed_features=scaler.names, require_votes=False)
    if clip_ids is None:
        idx = np.arange(len(clips))
    else:
        where = {cid: i for i, cid in enumerate(clips.clip_ids)}
        missing = [cid for cid in clip_ids if cid not in where]
        if missing:
            raise ValueError(
                f"{len(missing)} clip(s) to predict are not in {data}, e.g. "
                f"{missing[0]}: is this the data the run was trained on?"
            )
        idx = np.array([where[cid] for cid in clip_ids], dtype=np.int64)
    dd = device_data(clips, scaler, cfg, dev)
    scored = evaluate(model=model, data=dd, idx=idx, cfg=cfg, device=dev)
    # A per-frame model scores (n, F, 5) as in its run; a clip gets their mean.
    probs = scored.mean(axis=1) if scored.ndim == 3 else scored
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "predictions.jsonl").open("w") as fh:
        for i, p in zip(idx, probs):
            row = {
                "clip_id": clips.clip_ids[i],
                "pred": [round(float(x), 6) for x in p],
                "pred_mode": GRADES[int(np.argmax(p))],
            }
            fh.write(json.dumps(row) + "\n")
    labelled = clips.votes[idx].sum(1) > 0
    result: dict = {}
    if len(idx) and bool(labelled.all()):
        targets = clips.targets[idx].numpy().astype(np.float64)
        result = {
            "checkpoint": meta["path"],
            "data": str(clips.root),
            "dataset_sha256": clips.manifest_sha256,
            "n_clips": int(len(idx)),
            **metrics_all(scored, targets),
            "top_hi": top_hi_segments(scored, targets),
        }
        json_write(out / "metrics.json", result)
    return result
