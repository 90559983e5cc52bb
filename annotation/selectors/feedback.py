"""After-vote feedback for an expert: their recent *final* votes (past the undo
window) against the rest of the panel, and their running bias. Panel votes only:
no model output is read here."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from annotation import agreement
from annotation.models import GRADES, ClipDistribution, Vote


def expert_feedback(*, expert, limit: int = 30) -> dict:
    """Rows for the ``limit`` latest final votes (oldest first) with the rest of the
    panel's mean grade and mode, the EMD to the rest, within-one, and the running
    mean bias (own score − rest's mean; + = harsher). Clips nobody else graded are
    left out (there is nothing to stand against)."""
    final_before = timezone.now() - timedelta(seconds=settings.VOTE_UNDO_SECONDS)
    votes = list(
        Vote.objects.filter(expert=expert, created_at__lte=final_before)
        .order_by("-created_at", "-id")
        .values_list("clip_id", "grade", "created_at")[:limit]
    )[::-1]
    if not votes:
        return {"rows": [], "bias": None, "within_one": None, "n": 0}
    counts_of = {
        d.clip_id: [d.n_a, d.n_b, d.n_c, d.n_d, d.n_e]
        for d in ClipDistribution.objects.filter(clip_id__in=[v[0] for v in votes])
    }
    grade_index = np.array([GRADES.index(v[1]) for v in votes])
    counts = np.array([counts_of.get(v[0], [0] * 5) for v in votes], dtype=float)
    against = agreement.votes_against_rest(grade_index, counts)
    usable = against["usable"]
    kept = [v for v, ok in zip(votes, usable, strict=True) if ok]
    rest = counts[usable].copy()
    rest[np.arange(len(kept)), grade_index[usable]] -= 1
    rest_mean = (rest / rest.sum(axis=1, keepdims=True)) @ np.arange(1, 6)
    running = np.cumsum(against["bias"]) / np.arange(1, len(kept) + 1)
    rows = [
        {
            "clip_id": clip_id,
            "grade": grade,
            "at": at,
            "rest_mean": float(rest_mean[i]),
            "rest_mode": GRADES[int(against["mode"][i])],
            "n_rest": int(rest[i].sum()),
            "emd": float(against["emd"][i]),
            "within_one": bool(against["within_one"][i]),
            "running_bias": float(running[i]),
        }
        for i, (clip_id, grade, at) in enumerate(kept)
    ]
    return {
        "rows": rows,
        "n": len(rows),
        "bias": float(against["bias"].mean()) if rows else None,
        "within_one": float(against["within_one"].mean()) if rows else None,
        "emd": float(against["emd"].mean()) if rows else None,
    }
