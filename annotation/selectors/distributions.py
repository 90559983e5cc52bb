"""Reads: grade distributions, from the trigger-maintained counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import (
    Count,
    Q,
    QuerySet,
)

from annotation import sql
from annotation.models import (
    GRADES,
    ClipDistribution,
    Vote,
)


@dataclass(frozen=True)
class DistributionArrays:
    """Distributions of many clips as arrays (row i belongs to clip_ids[i])."""

    clip_ids: np.ndarray  # (N,) int64
    counts: np.ndarray  # (N, 5) int64
    n_votes: np.ndarray  # (N,)
    probs: np.ndarray  # (N, 5) float64, zeros where n_votes == 0
    mean_score: np.ndarray  # (N,) NaN where n_votes == 0
    std: np.ndarray
    entropy: np.ndarray
    mode: np.ndarray  # (N,) index 0..4, -1 where n_votes == 0


def distribution_stats(counts, clip_ids=None) -> DistributionArrays:
    """Counts (N, 5) in grade order → every clip's distribution summary (pure numpy).

    The one computation of the statistics, used by the selectors, the API and the
    admin: mean_score uses A=1 .. E=5; std is the population standard deviation of
    the scores; entropy is in bits (0 = unanimous, log2(5) ≈ 2.32 = uniform); the
    mode is the most-voted grade, ties to the better grade. With no votes, probs are
    zeros and the statistics NaN (-1 for the mode).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, len(GRADES))
    n = counts.sum(axis=1)
    safe_n = np.where(n > 0, n, 1)
    probs = counts / safe_n[:, None]
    scores = np.arange(1, len(GRADES) + 1, dtype=np.float64)
    mean = probs @ scores
    var = probs @ (scores**2) - mean**2
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(probs > 0, np.log2(np.where(probs > 0, probs, 1.0)), 0.0)
    entropy = -(probs * logs).sum(axis=1)
    empty = n == 0
    return DistributionArrays(
        clip_ids=np.arange(len(counts)) if clip_ids is None else clip_ids,
        counts=counts,
        n_votes=n,
        probs=probs,
        mean_score=np.where(empty, np.nan, mean),
        std=np.where(empty, np.nan, np.sqrt(np.clip(var, 0.0, None))),
        entropy=np.where(empty, np.nan, entropy + 0.0),
        mode=np.where(empty, -1, counts.argmax(axis=1)),
    )


def distribution_arrays(*, clip_ids: list[int] | None = None) -> DistributionArrays:
    """All (or some) clips' distributions, vectorized: the fast path for 100k clips.

    The counts come from the trigger-maintained table, so they always equal the votes.
    """
    table = np.array(
        sql.distribution_table(connection, clip_ids), dtype=np.int64
    ).reshape(-1, 6)
    return distribution_stats(table[:, 1:], clip_ids=table[:, 0])


def distribution_dicts(arrays: DistributionArrays) -> list[dict]:
    """One summary dict per row of ``arrays`` (None for the statistics of a clip
    without votes), as the API and the admin show it."""
    empty = arrays.n_votes == 0

    def column(values: np.ndarray) -> list:
        boxed = values.astype(object)
        boxed[empty] = None
        return boxed.tolist()

    modes = np.array([*GRADES, None], dtype=object)[arrays.mode].tolist()
    rows = zip(
        arrays.counts.tolist(),
        arrays.probs.tolist(),
        arrays.n_votes.tolist(),
        modes,
        column(arrays.mean_score),
        column(arrays.std),
        column(arrays.entropy),
    )
    return [
        {
            "counts": counts,
            "probs": probs,
            "n_votes": n_votes,
            "mode": mode,
            "mean_score": mean,
            "std": std,
            "entropy": entropy,
        }
        for counts, probs, n_votes, mode, mean, std, entropy in rows
    ]


def distribution_from_counts(counts: list[int] | tuple[int, ...]) -> dict:
    """Counts A..E of one clip → its summary (``distribution_stats`` of one row)."""
    if len(counts) != len(GRADES):
        raise ValueError(f"expected 5 counts (A..E), got {len(counts)}")
    return distribution_dicts(distribution_stats([counts]))[0]


def distribution_for_clips(*, clip_ids: list[int] | None = None) -> dict[int, dict]:
    """{clip_id: distribution dict} (the keys of ``distribution_from_counts``).

    Built from ``distribution_arrays``, so 100,000 clips take a fraction of a second.
    """
    arrays = distribution_arrays(clip_ids=clip_ids)
    return dict(zip(arrays.clip_ids.tolist(), distribution_dicts(arrays)))


def distribution_rows(*, clip_ids: list[int] | None = None) -> QuerySet:
    """ClipDistribution rows (counts) in clip order, optionally for some clips."""
    rows = ClipDistribution.objects.order_by("clip_id")
    if clip_ids is not None:
        rows = rows.filter(clip_id__in=list(clip_ids))
    return rows


def distribution_for_clip(*, clip_id: int) -> dict:
    found = distribution_for_clips(clip_ids=[clip_id])
    return found.get(clip_id) or distribution_from_counts([0, 0, 0, 0, 0])


def distribution_recount_mismatches() -> list[int]:
    """Clip ids whose maintained counts differ from a fresh count of the votes.

    Always empty unless someone disabled the triggers; used by tests and the admin.
    """
    fresh = {
        row["clip_id"]: row
        for row in Vote.objects.order_by()
        .values("clip_id")
        .annotate(
            **{f"n_{g.lower()}": Count("id", filter=Q(grade=g)) for g in GRADES},
            n_votes=Count("id"),
        )
    }
    bad = []
    for row in ClipDistribution.objects.values():
        want = fresh.get(row["clip_id"], {})
        for key in ("n_a", "n_b", "n_c", "n_d", "n_e", "n_votes"):
            if row[key] != want.get(key, 0):
                bad.append(row["clip_id"])
                break
    known = set(ClipDistribution.objects.values_list("clip_id", flat=True))
    bad.extend(clip_id for clip_id in fresh if clip_id not in known)
    return sorted(bad)
