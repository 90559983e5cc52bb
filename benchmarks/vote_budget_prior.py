"""The model prior for benchmarks/vote_budget.py: a real clinic model's
out-of-fold predictions as a per-clip Dirichlet prior.

benchmarks/compare_models.py cross-validates modeling's 'clinic' model on
rendered synthetic clips with a simulated panel and writes, per seed, each clip's
out-of-fold predicted distribution (predicted by a model that never trained on
the clip's patient). The prior of clip i is alpha_i = s p_i, p_i the mean of the
finished seeds' predictions (floored at FLOOR, renormalised) and the strength s
the maximum Dirichlet-multinomial likelihood of the fit half's votes over a log
grid. Reads only; the runs' folder belongs to the comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annotation.budget_emd import dirichlet_multinomial_loglik

FLOOR = 1e-3
STRENGTH_GRID = tuple(float(s) for s in np.geomspace(0.1, 1e4, 401))


@dataclass
class ClinicPanel:
    """The rendered clips' panel votes and the clinic model's prediction."""

    counts: np.ndarray  # (clips, 5) votes
    prediction: np.ndarray  # (clips, 5) mean out-of-fold predicted distribution
    seeds: list[int]  # the finished seeds averaged
    manifest: Path


def clinic_panel(runs: Path) -> ClinicPanel:
    """The votes of ``runs``' one synthetic manifest and the mean out-of-fold
    prediction of its finished clinic runs (listed in runs/runs.json, with an
    oof_predictions.jsonl; the EMD loss, no control)."""
    manifests = sorted(runs.glob("synthetic_*/manifest.jsonl"))
    if len(manifests) != 1:
        raise SystemExit(
            f"{runs}: expected one synthetic_*/manifest.jsonl, found "
            f"{len(manifests)}; pass the --out folder of benchmarks/compare_models.py"
        )
    clips = [json.loads(line) for line in manifests[0].read_text().splitlines()]
    ids = [clip["clip_id"] for clip in clips]
    counts = np.array([clip["votes"] for clip in clips], dtype=np.int64)
    listed = runs / "runs" / "runs.json"
    entries = json.loads(listed.read_text()) if listed.is_file() else []
    if isinstance(entries, dict):
        entries = entries.get("runs", [])
    seeds, predictions = [], []
    for entry in entries:
        if (entry.get("model"), entry.get("control")) != ("clinic", "none"):
            continue
        # modeling.compare writes each run to <out>/runs/seed_<S>/<name>
        run = Path(entry["dir"])
        oof = runs / "runs" / run.parent.name / run.name / "oof_predictions.jsonl"
        if entry.get("loss") != "emd" or not oof.is_file():
            continue
        rows = {}
        for line in oof.read_text().splitlines():
            row = json.loads(line)
            rows[row["clip_id"]] = row["pred"]
        missing = set(ids) - set(rows)
        if missing:
            raise SystemExit(f"{oof}: no prediction for {len(missing)} clips")
        seeds.append(int(entry["seed"]))
        predictions.append([rows[i] for i in ids])
    if not seeds:
        raise SystemExit(
            f"{listed}: no finished clinic run (model clinic, loss emd, no control)"
        )
    order = np.argsort(seeds)
    return ClinicPanel(
        counts=counts,
        prediction=np.mean(np.array(predictions, dtype=np.float64), axis=0),
        seeds=[seeds[i] for i in order],
        manifest=manifests[0],
    )


def floored(prediction: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """Each row floored at ``floor`` and renormalised, so no grade has a zero
    prior (a zero alpha would make a vote there impossible)."""
    p = np.maximum(np.asarray(prediction, dtype=np.float64), floor)
    return p / p.sum(axis=-1, keepdims=True)


def strength_fit(counts: np.ndarray, prediction: np.ndarray) -> float:
    """The s on STRENGTH_GRID maximising the Dirichlet-multinomial likelihood of
    ``counts`` under alpha_i = s p_i (p the floored prediction). Pass only the
    fit half's rows."""
    p = floored(prediction)
    loglik = [dirichlet_multinomial_loglik(counts, s * p) for s in STRENGTH_GRID]
    return STRENGTH_GRID[int(np.argmax(loglik))]
