"""Reads: the panel's votes as arrays, the cached panel statistics, one expert's
figures and the clip explorer's rows (admins only; never shown to experts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from annotation import agreement, sql_panel
from annotation.models import GRADES, Clip, ExpertProfile, PanelStatistics


@dataclass(frozen=True)
class PanelVotes:
    """One entry per vote on an active clip (grades as 1..5)."""

    clip: np.ndarray
    expert: np.ndarray
    grade: np.ndarray
    month: np.ndarray  # datetime64[M] of the vote (UTC); str() of one is "YYYY-MM"
    seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.grade)


def panel_votes() -> PanelVotes:
    """Every vote on an active clip, ordered by clip, then expert."""
    clip, expert, grade, month, seconds = sql_panel.panel_votes_columns(connection)
    order = _by_clip_then_expert(clip, expert)
    return PanelVotes(
        clip=clip[order],
        expert=expert[order],
        grade=grade[order],
        month=month[order],
        seconds=seconds[order],
    )


def _by_clip_then_expert(clip: np.ndarray, expert: np.ndarray) -> np.ndarray:
    """The order that sorts votes by clip, then expert: one integer key where the
    ids' ranges allow it (twice as fast as a lexsort on 4,000,000 votes)."""
    if not len(clip):
        return np.zeros(0, dtype=np.intp)
    span = int(expert.max()) - int(expert.min()) + 1
    if (int(clip.max()) - int(clip.min()) + 1) * span < 2**62:
        key = (clip - clip.min()) * span + (expert - expert.min())
        return np.argsort(key, kind="stable")
    return np.lexsort((expert, clip))


def repeat_pairs() -> dict[int, tuple[list[int], list[int]]]:
    """{expert id: (first grades, repeat grades)} from the hidden repeats (1..5)."""
    score = {grade: index + 1 for index, grade in enumerate(GRADES)}
    pairs: dict[int, tuple[list[int], list[int]]] = {}
    for expert, first, repeat in sql_panel.repeat_pairs_rows(connection):
        firsts, repeats = pairs.setdefault(int(expert), ([], []))
        firsts.append(score[first])
        repeats.append(score[repeat])
    return pairs


def expert_consistency(*, firsts, repeats, seconds) -> dict:
    """An expert's test–retest κ from hidden repeats (first and repeat grades) and
    speed (seconds per clip), as the dashboards show them."""
    median = agreement.median_seconds(seconds)
    return {
        "n_repeats": len(firsts),
        "test_retest_kappa": (
            finite_or_none(agreement.test_retest_kappa(firsts, repeats))
            if len(firsts) >= 2
            else None
        ),
        "median_seconds": finite_or_none(median),
        "too_fast": bool(median < settings.FAST_GRADING_SECONDS),
    }


def panel_statistics_latest() -> PanelStatistics | None:
    return PanelStatistics.objects.filter(key="panel").first()


def panel_statistics_stale(*, statistics: PanelStatistics | None) -> bool:
    """Votes were written or changed since the statistics were computed."""
    if statistics is None:
        return True
    return sql_panel.votes_marker(connection) != statistics.votes_marker


def panel_is_synthetic() -> bool:
    """Every clip with votes is synthetic (the demo): the pages say so."""
    voted = Clip.objects.filter(is_active=True, distribution__n_votes__gt=0)
    return voted.exists() and not voted.filter(is_synthetic=False).exists()


def expert_codes() -> dict[int, str]:
    """{user id: pseudonymous expert code}: dashboards name experts by code only."""
    return dict(ExpertProfile.objects.values_list("user_id", "code"))


def expert_detail(*, expert_id: int) -> dict | None:
    """One expert against the rest of the panel: confusion, bias per month,
    test–retest κ, speed. Reads only this expert's votes, each with its clip's
    trigger-maintained counts. None if the expert never voted."""
    rows = sql_panel.expert_votes_rows(connection, expert_id=expert_id)
    if not rows:
        return None
    columns = list(zip(*rows))
    grade = np.searchsorted(np.array(GRADES), np.array(columns[0]))
    epoch = np.array(columns[1], dtype=np.float64).astype("datetime64[s]")
    month = np.datetime_as_string(epoch.astype("datetime64[M]"), unit="M")
    seconds = np.array(columns[2], dtype=np.float64)
    counts = np.array(columns[3:], dtype=np.float64).T
    against = agreement.votes_against_rest(grade, counts)
    usable = against["usable"]
    confusion = np.zeros((len(GRADES), len(GRADES)), dtype=np.int64)
    np.add.at(confusion, (against["mode"], grade[usable]), 1)
    months = sorted(set(month.tolist()))
    usable_month = month[usable]
    bias_by_month = [
        float(against["bias"][usable_month == m].mean())
        if (usable_month == m).any()
        else None
        for m in months
    ]
    firsts, repeats = repeat_pairs().get(expert_id, ([], []))

    def mean(values) -> float | None:
        return float(values.mean()) if len(values) else None

    return {
        "expert_id": expert_id,
        "n_votes": len(rows),
        "bias": mean(against["bias"]),
        "emd": mean(against["emd"]),
        "within_one": mean(against["within_one"]),
        "confusion": confusion.tolist(),
        "months": months,
        "bias_by_month": bias_by_month,
        **expert_consistency(firsts=firsts, repeats=repeats, seconds=seconds),
    }


CLIP_SORTS = {
    "disagreement": "ordinal_dispersion",
    "votes": "n_votes",
    "ci_width": "ci_width",
    "entropy": "entropy",
    "id": "id",
}


@dataclass(frozen=True)
class ClipTable:
    """Every active clip's distribution and dispersion, in the explorer's order."""

    clip_ids: np.ndarray
    synthetic: np.ndarray
    has_video: np.ndarray
    counts: np.ndarray
    probs: np.ndarray
    dispersion: agreement.ClipDispersion

    def __len__(self) -> int:
        return len(self.clip_ids)

    def row(self, i: int) -> dict:
        d = self.dispersion
        return {
            "id": int(self.clip_ids[i]),
            "is_synthetic": bool(self.synthetic[i]),
            "has_video": bool(self.has_video[i]),
            "n_votes": int(d.n_votes[i]),
            "counts": self.counts[i].tolist(),
            "probs": self.probs[i].tolist(),
            "ci_low": d.ci_low[i].tolist(),
            "ci_high": d.ci_high[i].tolist(),
            "ci_width": float((d.ci_high[i] - d.ci_low[i]).max()),
            "entropy": finite_or_none(d.entropy_bits[i]),
            "std": finite_or_none(d.std[i]),
            "ordinal_dispersion": finite_or_none(d.ordinal_dispersion[i]),
        }

    def rows(self, start: int, stop: int) -> list[dict]:
        return [self.row(i) for i in range(start, min(stop, len(self)))]


def clips_explorer(
    *, sort: str = "disagreement", descending: bool = True, min_votes: int = 0
) -> ClipTable:
    """Every active clip with its distribution, credible intervals and dispersion,
    sorted by ``sort`` (a key of CLIP_SORTS; clips without votes last), as arrays:
    100,000 clips sort in a fraction of a second, and only a page becomes dicts."""
    if sort not in CLIP_SORTS:
        raise ValueError(f"sort must be one of {', '.join(CLIP_SORTS)}; got {sort!r}")
    table = np.array(sql_panel.explorer_rows(connection), dtype=np.int64).reshape(-1, 8)
    ids, synthetic, video = table[:, 0], table[:, 1] > 0, table[:, 2] > 0
    counts = table[:, 3:]
    probs = counts / np.maximum(counts.sum(axis=1), 1)[:, None]
    dispersion = agreement.clip_dispersion(counts)
    key = {
        "ordinal_dispersion": dispersion.ordinal_dispersion,
        "n_votes": dispersion.n_votes.astype(np.float64),
        "ci_width": dispersion.ci_width_max,
        "entropy": dispersion.entropy_bits,
        "id": ids.astype(np.float64),
    }[CLIP_SORTS[sort]]
    chosen = dispersion.n_votes >= min_votes
    order = np.flatnonzero(chosen)
    values = key[order]
    missing = np.isnan(values)
    ranked = np.argsort(-values if descending else values, kind="stable")
    ranked = np.concatenate([ranked[~missing[ranked]], ranked[missing[ranked]]])
    pick = order[ranked]
    return ClipTable(
        clip_ids=ids[pick],
        synthetic=synthetic[pick],
        has_video=video[pick],
        counts=counts[pick],
        probs=probs[pick],
        dispersion=agreement.ClipDispersion(
            n_votes=dispersion.n_votes[pick],
            entropy_bits=dispersion.entropy_bits[pick],
            std=dispersion.std[pick],
            ordinal_dispersion=dispersion.ordinal_dispersion[pick],
            ci_low=dispersion.ci_low[pick],
            ci_high=dispersion.ci_high[pick],
        ),
    )


def finite_or_none(value) -> float | None:
    """A float for JSON, or None where it is NaN or infinite."""
    value = float(value)
    return value if np.isfinite(value) else None
