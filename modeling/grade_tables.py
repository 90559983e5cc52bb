"""The comparison's grade tables from out-of-fold predictions (pure numpy).

Table 2 of RoSTFine (Fujii et al.): the balanced accuracy of the n-th most voted
grade, n = 1..5, tie-aware (a predicted grade inside the true tied set is right)
beside the papers' strict scoring, with the tie rates; Table 5 of Nakagawa et
al.: the top-25/50/75 % HI, Macro row (the class average). Every figure is the
mean ± std over the held-out test folds of every seed, recomputed here from the
runs' out-of-fold predictions (so runs written by an older metric set get the
same figures), and every table has the chance row beside the models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modeling.data import ClipSet
from modeling.metrics import emd_per_clip, metrics_all
from modeling.results import mean_std

ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")
TOP_KEYS = ("top25_hi_macro", "top50_hi_macro", "top75_hi_macro")
GRADE_KEYS = (
    tuple(
        f"{kind}_{n}"
        for n in ORDINALS
        for kind in ("balanced_accuracy", "strict_balanced_accuracy", "tie_rate")
    )
    + TOP_KEYS
)


def oof_predictions(
    run_dir: str | Path, clips: ClipSet, *, alt: bool = False
) -> np.ndarray:
    """A finished CV run's out-of-fold predictions in ``clips`` order: (N, 5),
    or (N, F, 5) for a run scored per frame (``pred_frames``); its
    ``oof_predictions.jsonl``, or the second selection rule's with ``alt``."""
    name = "oof_predictions_alt.jsonl" if alt else "oof_predictions.jsonl"
    lines = (Path(run_dir) / name).read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    if [r["clip_id"] for r in rows] != list(clips.clip_ids):
        raise ValueError(f"{run_dir}/{name} is not a run on this dataset's clips")
    key = "pred_frames" if "pred_frames" in rows[0] else "pred"
    return np.array([r[key] for r in rows], dtype=np.float64)


def oof_emd(run_dir: str | Path, clips: ClipSet, *, alt: bool = False) -> np.ndarray:
    """Per-clip test EMD of a finished CV run, in ``clips`` order; a run scored
    per frame gives each clip the mean of its frames' EMDs."""
    pred = oof_predictions(run_dir, clips, alt=alt)
    return emd_per_clip(pred, clips.targets.numpy().astype(np.float64))


def fold_metrics(pred: np.ndarray, targets: np.ndarray, folds: list) -> list[dict]:
    """``metrics_all`` on each fold's test clips of one seed's predictions."""
    return [metrics_all(pred[f.test], targets[f.test]) for f in folds]


def grade_figures(per_fold: list[dict]) -> dict:
    """Mean and std over folds of the Table 2 and Table 5 figures."""
    mean, std = mean_std([{k: float(r[k]) for k in GRADE_KEYS} for r in per_fold])
    return {"mean": mean, "std": std}


def _cell(figures: dict, key: str) -> str:
    return f"{figures['mean'][key]:.3f} ± {figures['std'][key]:.3f}"


def grade_tables_markdown(entries: list[tuple[str, dict]]) -> str:
    """Tables 2 and 5 for (row name, ``grade_figures``) entries, rows in order."""
    head = " | ".join(f"{n} tie-aware | {n} strict" for n in ORDINALS)
    lines = [
        "## n-th most voted grade (Table 2 of Fujii et al.)\n",
        "Balanced accuracy of the n-th most voted grade, mean ± std over the test "
        "folds of every seed. Tie-aware: a predicted n-th grade inside the true "
        "tied set (grades with as many votes as the n-th) is right; strict: only "
        "the lower-index grade of a tie is (the papers' scoring). The tie rate "
        "below the table (the same for every row) is the share of clips whose "
        "true n-th grade is tied: how much of the tie-aware figure the rule "
        "decides. The chance row (each "
        "clip given another test clip's panel) is the level to read every figure "
        "against: ties raise it, most for the 4th and 5th grades.\n",
        f"| Row | {head} |",
        "|---|" + "---|" * (2 * len(ORDINALS)),
    ]
    for name, fig in entries:
        cells = " | ".join(
            f"{_cell(fig, f'balanced_accuracy_{n}')} | "
            f"{_cell(fig, f'strict_balanced_accuracy_{n}')}"
            for n in ORDINALS
        )
        lines.append(f"| {name} | {cells} |")
    first = entries[0][1]
    rates = ", ".join(f"{n} {first['mean'][f'tie_rate_{n}']:.2f}" for n in ORDINALS)
    lines += [
        "",
        f"Tie rate of the true n-th grade: {rates}.",
        "",
        "## Top-k HI, Macro (Table 5 of Nakagawa et al.)\n",
        "Per true grade-mode class, the HI reached by the best 25, 50 and 75 % of "
        "its clips (the class's 75th, 50th and 25th HI percentiles), averaged "
        "over the classes (the paper's Macro row); mean ± std over the test folds "
        "of every seed, with the chance row.\n",
        "| Row | Top-25 % HI | Top-50 % HI | Top-75 % HI |",
        "|---|---|---|---|",
    ]
    for name, fig in entries:
        lines.append(
            f"| {name} | " + " | ".join(_cell(fig, k) for k in TOP_KEYS) + " |"
        )
    return "\n".join(lines) + "\n"
