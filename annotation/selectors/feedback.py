"""After-vote feedback for an expert: their recent *final* votes (past the undo
window) against the rest of the panel, and their running bias. Panel votes only:
no model output is read here."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from annotation import agreement
from annotation.handles import presentation_handle, short_label
from annotation.models import GRADES, ClipDistribution, Vote
from annotation.selectors.votes import votes_of_expert


def expert_feedback(*, expert, limit: int = 30) -> dict:
    """Rows for the ``limit`` latest final votes (oldest first) with the rest of the
    panel's mean grade and mode, the EMD to the rest, within-one, and the running
    mean bias (own score − rest's mean; + = harsher). Clips nobody else graded are
    left out (there is nothing to stand against)."""
    final_before = timezone.now() - timedelta(seconds=settings.VOTE_UNDO_SECONDS)
    # First votes and hidden repeats alike (rows named by presentation handle),
    # so a repeat is not told by its absence here either.
    rows_found = votes_of_expert(expert=expert, created_before=final_before)[:limit]
    votes = [
        (row["clip_id"], row["grade"], row["created_at"], row["repeat"])
        for row in rows_found
    ][::-1]
    if not votes:
        return {"rows": [], "bias": None, "within_one": None, "n": 0}
    clip_ids = [v[0] for v in votes]
    counts_of = {
        d.clip_id: [d.n_a, d.n_b, d.n_c, d.n_d, d.n_e]
        for d in ClipDistribution.objects.filter(clip_id__in=clip_ids)
    }
    first_grade = dict(
        Vote.objects.filter(expert=expert, clip_id__in=clip_ids).values_list(
            "clip_id", "grade"
        )
    )
    grade_index = np.array([GRADES.index(v[1]) for v in votes])
    counts = np.array([counts_of.get(v[0], [0] * 5) for v in votes], dtype=float)
    for i, (clip_id, grade, _, repeat) in enumerate(votes):
        # The panel counts the first vote, not the repeat: the rest of the
        # panel is the counts less the first vote.
        if repeat and clip_id in first_grade:
            counts[i, GRADES.index(first_grade[clip_id])] -= 1
            counts[i, GRADES.index(grade)] += 1
    against = agreement.votes_against_rest(grade_index, counts)
    usable = against["usable"]
    kept = [v for v, ok in zip(votes, usable, strict=True) if ok]
    rest = counts[usable].copy()
    rest[np.arange(len(kept)), grade_index[usable]] -= 1
    rest_mean = (rest / rest.sum(axis=1, keepdims=True)) @ np.arange(1, 6)
    running = np.cumsum(against["bias"]) / np.arange(1, len(kept) + 1)
    rows = [
        {
            "clip": short_label(
                presentation_handle(expert_id=expert.pk, clip_id=clip_id, repeat=repeat)
            ),
            "grade": grade,
            "at": at,
            "rest_mean": float(rest_mean[i]),
            "rest_mode": GRADES[int(against["mode"][i])],
            "n_rest": int(rest[i].sum()),
            "emd": float(against["emd"][i]),
            "within_one": bool(against["within_one"][i]),
            "running_bias": float(running[i]),
        }
        for i, (clip_id, grade, at, repeat) in enumerate(kept)
    ]
    return {
        "rows": rows,
        "n": len(rows),
        "bias": float(against["bias"].mean()) if rows else None,
        "within_one": float(against["within_one"].mean()) if rows else None,
        "emd": float(against["emd"].mean()) if rows else None,
    }
