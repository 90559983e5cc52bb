"""Prediction: a checkpoint applied to every clip of a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modeling import checkpoint as ckpt
from modeling.data import clipset_load
from modeling.grades import GRADES
from modeling.metrics import metrics_all, top_hi_segments
from modeling.runtime import device_resolve
from modeling.training import device_data, evaluate, json_write


def predict(
    *,
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    device: str = "auto",
) -> dict:
    """Predict every clip of a manifest with a checkpoint.

    Writes ``predictions.jsonl`` (clip_id, pred, pred_mode) under ``out``; when the
    manifest has votes, also ``metrics.json``. Returns the metrics (or {}).
    """
    dev = device_resolve(device)
    model, meta, cfg, scaler = ckpt.checkpoint_load(checkpoint, device=dev)
    clips = clipset_load(data, speed_features=scaler.names, require_votes=False)
    dd = device_data(clips, scaler, cfg, dev)
    probs = evaluate(
        model=model, data=dd, idx=np.arange(len(clips)), cfg=cfg, device=dev
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "predictions.jsonl").open("w") as fh:
        for cid, p in zip(clips.clip_ids, probs):
            row = {
                "clip_id": cid,
                "pred": [round(float(x), 6) for x in p],
                "pred_mode": GRADES[int(np.argmax(p))],
            }
            fh.write(json.dumps(row) + "\n")
    labelled = clips.votes.sum(1) > 0
    result: dict = {}
    if bool(labelled.all()):
        targets = clips.targets.numpy().astype(np.float64)
        result = {
            "checkpoint": meta["path"],
            "data": str(clips.root),
            "dataset_sha256": clips.manifest_sha256,
            **metrics_all(probs, targets),
            "top_hi": top_hi_segments(probs, targets),
        }
        json_write(out / "metrics.json", result)
    return result
