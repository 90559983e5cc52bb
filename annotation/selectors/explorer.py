"""Reads: one expert's figures and the clip explorer's pages (admins only; never
shown to experts). Both stay fast whatever the size of the panel: the database
groups an expert's votes by month, grade and clip counts, and sorts and pages
the clips; Python works on those groups and on the one page shown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection

from annotation import agreement, dispersion, sql_explorer
from annotation.models import GRADES
from annotation.selectors.panel import expert_consistency, finite_or_none


def expert_detail(*, expert_id: int) -> dict | None:
    """One expert against the rest of the panel: confusion, bias per month,
    test–retest κ, speed. Each vote against the rest depends only on its grade
    and its clip's trigger-maintained counts, so the votes come grouped by month,
    grade and counts, and each group counts as many times as it has votes.
    None if the expert never voted."""
    rows = sql_explorer.expert_vote_groups(connection, expert_id=expert_id)
    if not rows:
        return None
    columns = list(zip(*rows))
    month = np.array(columns[0])
    grade = np.searchsorted(np.array(GRADES), np.array(columns[1]))
    counts = np.array(columns[2:7], dtype=np.float64).T
    weight = np.array(columns[7], dtype=np.int64)
    against = agreement.votes_against_rest(grade, counts)
    usable = against["usable"]
    usable_weight = weight[usable]
    confusion = np.zeros((len(GRADES), len(GRADES)), dtype=np.int64)
    np.add.at(confusion, (against["mode"], grade[usable]), usable_weight)
    months = sorted(set(month.tolist()))
    usable_month = month[usable]

    def mean(values, where=None) -> float | None:
        w = usable_weight if where is None else usable_weight[where]
        if not w.sum():
            return None
        v = values if where is None else values[where]
        return float((v * w).sum() / w.sum())

    n_votes = int(weight.sum())
    middle = sql_explorer.expert_middle_seconds(
        connection, expert_id=expert_id, n_votes=n_votes
    )
    score = {g: index + 1 for index, g in enumerate(GRADES)}
    pairs = sql_explorer.expert_repeat_rows(connection, expert_id=expert_id)
    firsts = [score[first] for first, _ in pairs]
    repeats = [score[repeat] for _, repeat in pairs]
    return {
        "expert_id": expert_id,
        "n_votes": n_votes,
        "bias": mean(against["bias"]),
        "emd": mean(against["emd"]),
        "within_one": mean(against["within_one"]),
        "confusion": confusion.tolist(),
        "months": months,
        "bias_by_month": [mean(against["bias"], usable_month == m) for m in months],
        **expert_consistency(firsts=firsts, repeats=repeats, seconds=middle),
    }


CLIP_SORTS = {
    "disagreement": "ordinal_dispersion",
    "votes": "n_votes",
    "ci_width": "ci_width",
    "entropy": "entropy",
    "id": "id",
}


def _rows(table: list[tuple]) -> list[dict]:
    """The explorer's rows (id, is_synthetic, has_video, n_a … n_e) as the page
    shows them: distribution, credible intervals and dispersion."""
    if not table:
        return []
    array = np.array(table, dtype=np.int64).reshape(-1, 8)
    counts = array[:, 3:]
    probs = counts / np.maximum(counts.sum(axis=1), 1)[:, None]
    d = dispersion.clip_dispersion(counts)
    return [
        {
            "id": int(array[i, 0]),
            "is_synthetic": bool(array[i, 1]),
            "has_video": bool(array[i, 2]),
            "n_votes": int(d.n_votes[i]),
            "counts": counts[i].tolist(),
            "probs": probs[i].tolist(),
            "ci_low": d.ci_low[i].tolist(),
            "ci_high": d.ci_high[i].tolist(),
            "ci_width": float((d.ci_high[i] - d.ci_low[i]).max()),
            "entropy": finite_or_none(d.entropy_bits[i]),
            "std": finite_or_none(d.std[i]),
            "ordinal_dispersion": finite_or_none(d.ordinal_dispersion[i]),
        }
        for i in range(len(array))
    ]


@dataclass(frozen=True)
class ClipTable:
    """The explorer's active clips in order: how many, and any slice of them as
    rows, read on demand. Every sort key but the id depends on a clip's counts
    alone: the distinct count vectors are ranked (clips with equal keys by id,
    clips without a key last), and a slice reads only the clips it shows."""

    sort: str
    descending: bool
    min_votes: int
    vectors: np.ndarray  # (V, 5) distinct counts, in the order of their ranks
    rank: np.ndarray  # (V,) rank of each vector's key (equal keys, equal rank)
    clips_before: np.ndarray  # clips ranked before each rank (the last: all)

    def __len__(self) -> int:
        return int(self.clips_before[-1])

    def rows(self, start: int, stop: int) -> list[dict]:
        start, stop = max(start, 0), min(stop, len(self))
        if start >= stop:
            return []
        if self.sort == "id":
            table = sql_explorer.explorer_page_by_id(
                connection,
                min_votes=self.min_votes,
                descending=self.descending,
                offset=start,
                limit=stop - start,
            )
            return _rows(table)
        first = int(np.searchsorted(self.clips_before, start, side="right")) - 1
        last = int(np.searchsorted(self.clips_before, stop - 1, side="right")) - 1
        slices = []
        for rank in range(first, last + 1):
            begin = max(start, int(self.clips_before[rank]))
            end = min(stop, int(self.clips_before[rank + 1]))
            vectors = [tuple(map(int, v)) for v in self.vectors[self.rank == rank]]
            offset = begin - int(self.clips_before[rank])
            slices.append((vectors, offset, end - begin))
        table = sql_explorer.explorer_page_by_vectors(connection, slices=slices)
        return _rows(table)


def clips_explorer(
    *, sort: str = "disagreement", descending: bool = True, min_votes: int = 0
) -> ClipTable:
    """Every active clip of at least ``min_votes`` votes with its distribution,
    credible intervals and dispersion, sorted by ``sort`` (a key of CLIP_SORTS;
    clips without votes last; equal keys by id). Reads the distinct count
    vectors here and one slice's clips per ``rows`` call."""
    if sort not in CLIP_SORTS:
        raise ValueError(f"sort must be one of {', '.join(CLIP_SORTS)}; got {sort!r}")
    found = sql_explorer.distribution_vectors(connection, min_votes=min_votes)
    table = np.array(found, dtype=np.int64).reshape(-1, 6)
    vectors, n_clips = table[:, :5], table[:, 5]
    if sort == "id":
        key = np.zeros(len(vectors))  # one rank: only the number of clips counts
    else:
        spread = dispersion.clip_dispersion(vectors)
        key = {
            "ordinal_dispersion": spread.ordinal_dispersion,
            "n_votes": spread.n_votes.astype(np.float64),
            "ci_width": spread.ci_width_max,
            "entropy": spread.entropy_bits,
        }[CLIP_SORTS[sort]]
    missing = np.isnan(key)
    values = np.unique(key[~missing])  # ascending, equal floats once
    if descending:
        values = values[::-1]
    rank = np.full(len(key), len(values), dtype=np.int64)  # no key: last
    if descending:
        rank[~missing] = np.searchsorted(-values, -key[~missing])
    else:
        rank[~missing] = np.searchsorted(values, key[~missing])
    per_rank = np.bincount(rank, weights=n_clips, minlength=len(values) + 1)
    clips_before = np.concatenate([[0], np.cumsum(per_rank)]).astype(np.int64)
    order = np.argsort(rank, kind="stable")
    return ClipTable(
        sort=sort,
        descending=descending,
        min_votes=min_votes,
        vectors=vectors[order],
        rank=rank[order],
        clips_before=clips_before,
    )
