"""Writes: the cached panel statistics (``PanelStatistics``), recomputed from all
votes when they changed. The periodic task ``workers.tasks.panel_statistics_refresh``
calls ``panel_statistics_refresh``; the dashboards only read the cached row."""

from __future__ import annotations

import time

import numpy as np
from django.db import connection
from django.utils import timezone

from annotation import agreement, dispersion, sql_panel
from annotation.models import GRADES, PanelStatistics
from annotation.selectors.panel import (
    PanelVotes,
    expert_codes,
    expert_consistency,
    finite_or_none,
    panel_votes,
    repeat_pairs,
)
from annotation.services.reliability import panel_reliability, seconds_by_expert

MEAN_BINS = np.linspace(1.0, 5.0, 21)
STD_BINS = np.linspace(0.0, 2.0, 21)
KAPPA_EXPERTS = 40  # the heatmap shows the most active experts
CONVERGENCE_CLIPS = 2000  # clips subsampled for the convergence curve


def _alpha_ci(votes: PanelVotes, mask=slice(None), *, n_boot: int) -> dict:
    grade = votes.grade[mask]
    value, low, high = agreement.krippendorff_alpha_ci(
        votes.clip[mask], votes.expert[mask], grade, n_boot=n_boot
    )
    return {
        "value": finite_or_none(value),
        "low": finite_or_none(low),
        "high": finite_or_none(high),
        "n_votes": int(len(grade)),
    }


def _convergence(counts: np.ndarray, *, seed: int = 0) -> dict:
    """Widest 95 % credible interval of a clip's grade shares against its number of
    votes, by drawing k of each clip's own votes without replacement."""
    rng = np.random.default_rng(seed)
    n = counts.sum(axis=1)
    if not len(counts) or n.max(initial=0) < 2:
        return {"k": [], "median": [], "q25": [], "q75": [], "n_clips": []}
    pick = np.flatnonzero(n >= 2)
    if len(pick) > CONVERGENCE_CLIPS:
        pick = rng.choice(pick, CONVERGENCE_CLIPS, replace=False)
    ks = sorted({int(k) for k in np.unique(np.linspace(1, n.max(), 12).round())})
    out = {"k": [], "median": [], "q25": [], "q75": [], "n_clips": []}
    for k in ks:
        rows = [i for i in pick if n[i] >= k]
        if not rows:
            continue
        drawn = np.array(
            [
                rng.multivariate_hypergeometric(counts[i].astype(np.int64), k)
                for i in rows
            ]
        )
        width = dispersion.clip_dispersion(drawn).ci_width_max
        q25, median, q75 = np.quantile(width, [0.25, 0.5, 0.75])
        for key, value in (("k", k), ("median", median), ("q25", q25), ("q75", q75)):
            out[key].append(float(value))
        out["n_clips"].append(len(rows))
    return out


def panel_statistics_compute(votes: PanelVotes | None = None) -> dict:
    """Every figure the disagreement dashboard shows, as JSON-ready numbers."""
    votes = votes if votes is not None else panel_votes()
    counts, _ = agreement.unit_value_counts(
        votes.clip, votes.grade, categories=np.arange(1, len(GRADES) + 1)
    )
    spread = dispersion.clip_dispersion(counts)
    voted = spread.n_votes > 0
    mean = (counts / np.maximum(counts.sum(axis=1), 1)[:, None]) @ np.arange(1, 6)
    histogram, _, _ = np.histogram2d(
        mean[voted], spread.std[voted], bins=[MEAN_BINS, STD_BINS]
    )
    modes = np.bincount(counts[voted].argmax(axis=1), minlength=len(GRADES))
    months = np.unique(votes.month)
    figures = agreement.expert_figures(votes.clip, votes.expert, votes.grade)
    codes = expert_codes()
    repeats = repeat_pairs()
    experts = []
    seconds = seconds_by_expert(votes.expert, votes.seconds)
    for i, expert_id in enumerate(figures.rater_ids.tolist()):
        firsts, again = repeats.get(expert_id, ([], []))
        experts.append(
            {
                "expert_id": expert_id,
                "code": codes.get(expert_id, f"#{expert_id}"),
                "n_votes": len(seconds[i]),
                "bias": finite_or_none(figures.bias[i]),
                "emd": finite_or_none(figures.emd[i]),
                "within_one": finite_or_none(figures.within_one[i]),
                **expert_consistency(firsts=firsts, repeats=again, seconds=seconds[i]),
            }
        )
    busiest = sorted(experts, key=lambda e: -e["n_votes"])[:KAPPA_EXPERTS]
    keep = np.isin(votes.expert, [e["expert_id"] for e in busiest])
    kappa, overlap, ids = agreement.pairwise_weighted_kappa(
        votes.clip[keep], votes.expert[keep], votes.grade[keep], min_overlap=10
    )
    code_of = {e["expert_id"]: e["code"] for e in experts}
    return {
        "n_votes": int(len(votes)),
        "n_clips": int(voted.sum()),
        "n_experts": int(len(figures.rater_ids)),
        "alpha": _alpha_ci(votes, n_boot=1000),
        "alpha_by_month": [
            {"month": str(month), **_alpha_ci(votes, votes.month == month, n_boot=200)}
            for month in months
        ],
        "mean_std": {
            "mean_edges": MEAN_BINS.tolist(),
            "std_edges": STD_BINS.tolist(),
            "counts": histogram.astype(int).tolist(),
        },
        "mode_counts": modes.astype(int).tolist(),
        "kappa": {
            "labels": [code_of.get(int(i), f"#{i}") for i in ids],
            "matrix": [[finite_or_none(x) for x in row] for row in kappa],
            "overlap": overlap.astype(int).tolist(),
        },
        "convergence": _convergence(counts),
        "experts": experts,
        "human_baseline_emd": finite_or_none(agreement.expert_baseline(figures)),
        **panel_reliability(votes),
    }


def panel_statistics_refresh(*, force: bool = False) -> PanelStatistics:
    """Recompute and store the statistics if votes changed since the last time."""
    marker = sql_panel.votes_marker(connection)
    current = PanelStatistics.objects.filter(key="panel").first()
    if current is not None and current.votes_marker == marker and not force:
        return current
    start = time.perf_counter()
    votes = panel_votes()
    data = panel_statistics_compute(votes)
    statistics, _ = PanelStatistics.objects.update_or_create(
        key="panel",
        defaults={
            "computed_at": timezone.now(),
            "votes_marker": marker,
            "n_votes": len(votes),
            "seconds_to_compute": time.perf_counter() - start,
            "data": data,
        },
    )
    return statistics
