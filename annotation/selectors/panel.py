"""Reads: the panel's votes as arrays, the cached panel statistics, one expert's
figures and the clip explorer's rows (admins only; never shown to experts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from annotation import agreement, sql
from annotation.models import GRADES, Clip, ExpertProfile, PanelStatistics


@dataclass(frozen=True)
class PanelVotes:
    """One entry per vote on an active clip (grades as 1..5)."""

    clip: np.ndarray
    expert: np.ndarray
    grade: np.ndarray
    month: np.ndarray  # "YYYY-MM" of the vote
    seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.grade)


def panel_votes() -> PanelVotes:
    rows = sql.panel_votes_rows(connection)
    score = {grade: index + 1 for index, grade in enumerate(GRADES)}
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return PanelVotes(empty, empty, empty, np.zeros(0, dtype="<U7"), empty * 1.0)
    clip, expert, grade, created, seconds = zip(*rows)
    return PanelVotes(
        clip=np.fromiter(clip, dtype=np.int64, count=len(rows)),
        expert=np.fromiter(expert, dtype=np.int64, count=len(rows)),
        grade=np.array([score[g] for g in grade], dtype=np.int64),
        month=np.array([f"{t:%Y-%m}" for t in created]),
        seconds=np.fromiter(seconds, dtype=np.float64, count=len(rows)),
    )


def repeat_pairs() -> dict[int, tuple[list[int], list[int]]]:
    """{expert id: (first grades, repeat grades)} from the hidden repeats (1..5)."""
    score = {grade: index + 1 for index, grade in enumerate(GRADES)}
    pairs: dict[int, tuple[list[int], list[int]]] = {}
    for expert, first, repeat in sql.repeat_pairs_rows(connection):
        firsts, repeats = pairs.setdefault(int(expert), ([], []))
        firsts.append(score[first])
        repeats.append(score[repeat])
    return pairs


def panel_statistics_latest() -> PanelStatistics | None:
    return PanelStatistics.objects.filter(key="panel").first()


def panel_statistics_stale(*, statistics: PanelStatistics | None) -> bool:
    """Votes were written or changed since the statistics were computed."""
    if statistics is None:
        return True
    return sql.votes_marker(connection) != statistics.votes_marker


def panel_is_synthetic() -> bool:
    """Every clip with votes is synthetic (the demo): the pages say so."""
    voted = Clip.objects.filter(is_active=True, distribution__n_votes__gt=0)
    return voted.exists() and not voted.filter(is_synthetic=False).exists()


def expert_codes() -> dict[int, str]:
    """{user id: pseudonymous expert code}: dashboards name experts by code only."""
    return dict(ExpertProfile.objects.values_list("user_id", "code"))


def expert_detail(*, expert_id: int, votes: PanelVotes | None = None) -> dict | None:
    """One expert against the rest of the panel: confusion, bias per month,
    test–retest κ, speed. None if the expert never voted."""
    votes = votes if votes is not None else panel_votes()
    mine = votes.expert == expert_id
    if not mine.any():
        return None
    figures = agreement.expert_figures(votes.clip, votes.expert, votes.grade)
    (row,) = np.flatnonzero(figures.rater_ids == expert_id)
    months = sorted(set(votes.month[mine].tolist()))
    bias_by_month = []
    for month in months:
        in_month = votes.month == month
        # the rest of the panel on the expert's clips of that month, all votes
        clips = np.unique(votes.clip[mine & in_month])
        on_clips = np.isin(votes.clip, clips)
        monthly = agreement.expert_figures(
            votes.clip[on_clips], votes.expert[on_clips], votes.grade[on_clips]
        )
        at = np.flatnonzero(monthly.rater_ids == expert_id)
        bias_by_month.append(float(monthly.bias[at[0]]) if len(at) else None)
    firsts, repeats = repeat_pairs().get(expert_id, ([], []))
    seconds = agreement.median_seconds(votes.seconds[mine])
    return {
        "expert_id": expert_id,
        "n_votes": int(mine.sum()),
        "bias": float(figures.bias[row]),
        "emd": float(figures.emd[row]),
        "within_one": float(figures.within_one[row]),
        "confusion": figures.confusion[row].tolist(),
        "months": months,
        "bias_by_month": bias_by_month,
        "n_repeats": len(firsts),
        "test_retest_kappa": (
            agreement.test_retest_kappa(firsts, repeats) if len(firsts) >= 2 else None
        ),
        "median_seconds": seconds,
        "too_fast": bool(seconds < settings.FAST_GRADING_SECONDS),
    }


CLIP_SORTS = {
    "disagreement": "ordinal_dispersion",
    "votes": "n_votes",
    "ci_width": "ci_width",
    "entropy": "entropy",
    "id": "id",
}


def clips_explorer(
    *, sort: str = "disagreement", descending: bool = True, min_votes: int = 0
) -> list[dict]:
    """Every active clip with its distribution, credible intervals and dispersion,
    sorted by ``sort`` (a key of CLIP_SORTS)."""
    if sort not in CLIP_SORTS:
        raise ValueError(f"sort must be one of {', '.join(CLIP_SORTS)}; got {sort!r}")
    from annotation.selectors.distributions import distribution_arrays

    active = list(
        Clip.objects.filter(is_active=True).values_list(
            "id", "is_synthetic", "video_file"
        )
    )
    arrays = distribution_arrays(clip_ids=[clip_id for clip_id, _, _ in active])
    dispersion = agreement.clip_dispersion(arrays.counts)
    media = {clip_id: (synthetic, bool(video)) for clip_id, synthetic, video in active}
    rows = []
    for i, clip_id in enumerate(arrays.clip_ids.tolist()):
        n = int(arrays.n_votes[i])
        if n < min_votes:
            continue
        synthetic, has_video = media.get(clip_id, (False, False))
        rows.append(
            {
                "id": clip_id,
                "is_synthetic": synthetic,
                "has_video": has_video,
                "n_votes": n,
                "counts": arrays.counts[i].tolist(),
                "probs": arrays.probs[i].tolist(),
                "ci_low": dispersion.ci_low[i].tolist(),
                "ci_high": dispersion.ci_high[i].tolist(),
                "ci_width": float(dispersion.ci_width_max[i]),
                "entropy": _finite(dispersion.entropy_bits[i]),
                "std": _finite(dispersion.std[i]),
                "ordinal_dispersion": _finite(dispersion.ordinal_dispersion[i]),
            }
        )
    key = CLIP_SORTS[sort]
    # clips without votes (no dispersion) sort last either way
    rows.sort(key=lambda r: (r[key] is None, r[key] or 0), reverse=False)
    if descending:
        with_value = [r for r in rows if r[key] is not None]
        rows = with_value[::-1] + [r for r in rows if r[key] is None]
    return rows


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
