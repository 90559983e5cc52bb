"""Reads: the expert's queue and progress.

``clip_next_for_expert`` is the one selector that writes (it leases what it hands
out); the write itself is ``services.clip_leases_grant``.
"""

from __future__ import annotations

import functools
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Exists,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from annotation import budget_emd, dispersion, sql
from annotation.models import (
    Clip,
    ClipLease,
    RepeatVote,
    Vote,
)
from annotation.services.queue import clip_leases_grant
from annotation.shuffle import shuffle_key, shuffle_key_sql

_EXPIRED_LEASE_SWEEP_SHARE = 0.05
# The expected-EMD rule's prior is refitted from the panel at most this often.
_EMD_PRIOR_CACHE_KEY = "annotation.vote-budget-emd-prior"
_EMD_PRIOR_SECONDS = 600


@dataclass(frozen=True)
class Assignment:
    """A clip leased to an expert. ``is_repeat`` is never shown to the expert."""

    clip: Clip
    lease_expires_at: datetime
    is_repeat: bool


def _shuffled(queryset: QuerySet, expert_id: int) -> QuerySet:
    column = f'"{Clip._meta.db_table}"."id"'
    return queryset.annotate(
        shuffle=RawSQL(shuffle_key_sql(column, shuffle_key(expert_id)), ())
    )


_CLIP_QUEUE_FIELDS = (
    "id",
    "n_frames",
    "fps",
    "size_px",
    "track",
    "is_synthetic",
    "is_active",
)


def _queue_clip(row: tuple) -> Clip:
    """A Clip holding ``_CLIP_QUEUE_FIELDS`` from a raw SQL row in that order,
    which is the model's field order (``Model.from_db`` needs it). The booleans
    are cast (SQLite returns integers) and the track's JSON parsed (both
    databases' raw cursors return it as text)."""
    clip_id, n_frames, fps, size_px, track, synthetic, active = row
    if isinstance(track, str | bytes):
        track = json.loads(track)
    return Clip.from_db(
        connection.alias,
        _CLIP_QUEUE_FIELDS,
        (clip_id, n_frames, fps, size_px, track, bool(synthetic), bool(active)),
    )


@functools.cache
def _settled_ranges(ci_width: float, min_votes: int, cap: int) -> list:
    return dispersion.settled_ranges(
        ci_width=ci_width, min_votes=min_votes, max_votes=cap
    )


def vote_budget() -> list[tuple[int, int, int]] | None:
    """The (n, lo, hi) rows deciding when a clip is settled by the interval rule;
    no rows when only the expected-EMD rule (VOTE_BUDGET_EMD, applied in
    ``_fresh_candidates``) is on; None when neither is (VOTE_BUDGET_CI_WIDTH = 0
    and VOTE_BUDGET_EMD = 0)."""
    if settings.VOTE_BUDGET_CI_WIDTH <= 0:
        return [] if settings.VOTE_BUDGET_EMD > 0 else None
    return _settled_ranges(
        float(settings.VOTE_BUDGET_CI_WIDTH),
        int(settings.VOTE_BUDGET_MIN_VOTES),
        int(settings.VOTES_PER_CLIP),
    )


def vote_budget_emd_prior() -> np.ndarray | None:
    """The expected-EMD rule's Dirichlet prior, fitted on the panel's current
    counts (empirical Bayes, ``budget_emd.dirichlet_prior_fit``) and kept
    _EMD_PRIOR_SECONDS; None while too few clips have votes (no clip stops then).
    Only the stop decision reads it: no distribution, snapshot or export does."""
    cached = cache.get(_EMD_PRIOR_CACHE_KEY)
    if cached is None:
        rows = sql.distribution_table(connection, None)
        counts = np.array([row[1:] for row in rows], dtype=np.float64).reshape(-1, 5)
        alpha = budget_emd.dirichlet_prior_fit(counts)
        cached = {"alpha": None if alpha is None else alpha.tolist()}
        cache.set(_EMD_PRIOR_CACHE_KEY, cached, _EMD_PRIOR_SECONDS)
    return None if cached["alpha"] is None else np.array(cached["alpha"])


def _emd_stopped(clip_ids: list[int]) -> set[int]:
    """Of these clips, those the expected-EMD rule (VOTE_BUDGET_EMD) has stopped."""
    alpha = vote_budget_emd_prior()
    if alpha is None or not clip_ids:
        return set()
    rows = sql.distribution_table(connection, clip_ids)
    if not rows:
        return set()
    counts = np.array([row[1:] for row in rows], dtype=np.float64)
    total = int(settings.VOTES_PER_CLIP)
    stopped = budget_emd.stops(
        counts,
        alpha=alpha,
        total=total,
        threshold=float(settings.VOTE_BUDGET_EMD),
        min_votes=int(settings.VOTE_BUDGET_MIN_VOTES),
    )
    # a clip with all its votes is left to the usual "full clips last" order
    stopped &= counts.sum(1) < total
    return {int(row[0]) for row, done in zip(rows, stopped, strict=True) if done}


def _fresh_candidates(
    *, expert, now: datetime, limit: int, exclude: set[int], rng: random.Random
) -> list:
    if limit < 1:
        return []
    budget = vote_budget()
    by_emd = settings.VOTE_BUDGET_EMD > 0
    query = functools.partial(
        sql.queue_fresh_rows,
        connection,
        expert_id=expert.pk,
        now=now,
        wanted=settings.VOTES_PER_CLIP,
        shuffle=shuffle_key(expert.pk),
        budget=budget,
        budget_min_votes=settings.VOTE_BUDGET_MIN_VOTES,
        # A random share of requests keeps the plain order, so the clips that get
        # votes stay representative rather than only the contested ones.
        least_certain_first=budget is not None
        and rng.random() >= settings.VOTE_BUDGET_RANDOM_SHARE,
        model_priority=settings.VOTE_BUDGET_MODEL_PRIORITY,
    )
    if not by_emd:
        return [_queue_clip(row) for row in query(limit=limit, exclude=exclude)]
    # The expected-EMD rule is decided here on the candidates' counts (the SQL
    # knows only per-grade count ranges): stopped clips are dropped and the next
    # candidates asked for, in batches growing fourfold, each excluding those seen.
    kept: list[tuple] = []
    seen = set(exclude)
    batch = limit + 2
    while True:
        rows = query(limit=batch, exclude=seen)
        stopped = _emd_stopped([row[0] for row in rows])
        kept += [row for row in rows if row[0] not in stopped]
        if len(kept) >= limit or len(rows) < batch:
            return [_queue_clip(row) for row in kept[:limit]]
        seen |= {row[0] for row in rows}
        batch *= 4


def _held_clips(*, expert, holder: str, now: datetime, limit: int) -> list:
    """The clips this tab holds under live leases, in the order they were handed
    out, as (clip, is_repeat)."""
    rows = sql.queue_held_rows(
        connection, expert_id=expert.pk, holder=holder, now=now, limit=limit
    )
    return [(_queue_clip(row[:-1]), bool(row[-1])) for row in rows]


def _repeat_candidates(*, expert, now: datetime, limit: int, exclude: set[int]) -> list:
    """Clips the expert graded long enough ago, never repeated: at least
    REPEAT_MIN_GAP_CLIPS graded clips *and* REPEAT_MIN_GAP_HOURS hours ago, so a
    repeat is neither the clip just seen nor one seen minutes ago in a fast run."""
    gap_clips = settings.REPEAT_MIN_GAP_CLIPS
    own_votes = Vote.objects.filter(expert=expert)
    latest = list(
        own_votes.order_by("-created_at", "-id").values_list("id", flat=True)[
            :gap_clips
        ]
    )
    if len(latest) < gap_clips:  # fewer graded clips than the gap: none yet
        return []
    old_enough = Q(
        created_at__lte=now - timedelta(hours=settings.REPEAT_MIN_GAP_HOURS)
    ) & ~Q(id__in=latest)
    eligible = (
        own_votes.filter(
            old_enough, clip__is_active=True, clip__review=Clip.Review.APPROVED
        )
        .exclude(clip_id__in=exclude)
        .exclude(
            Exists(RepeatVote.objects.filter(expert=expert, clip=OuterRef("clip_id")))
        )
        .exclude(
            Exists(
                ClipLease.objects.filter(
                    expert=expert, clip=OuterRef("clip_id"), expires_at__gt=now
                )
            )
        )
        .values("clip_id")
    )
    clips = _shuffled(Clip.objects.filter(id__in=eligible), expert.pk)
    return list(clips.only(*_CLIP_QUEUE_FIELDS).order_by("shuffle", "id")[:limit])


def clip_next_for_expert(
    *, expert, count: int = 2, holder: str = "", rng: random.Random | None = None
) -> list[Assignment]:
    """The expert's next clips: the current one and ``count - 1`` to preload.

    Clips this tab (``holder``) already holds come first, so the preloaded clip
    becomes the current one. New clips: never one the expert graded or holds in
    another tab; clips still short of VOTES_PER_CLIP (counting live leases) first,
    least-loaded first, ties in a per-expert random order. With probability
    REPEAT_SHARE a slot becomes a hidden repeat of a clip graded long enough ago.
    Each returned clip is (re-)leased for CLIP_LEASE_SECONDS.
    """
    if count < 1:
        return []
    rng = rng or random.Random()
    now = timezone.now()
    picked = _held_clips(expert=expert, holder=holder, now=now, limit=count)
    taken = {clip.pk for clip, _ in picked}
    slots = count - len(picked)
    repeat_slots = [rng.random() < settings.REPEAT_SHARE for _ in range(slots)]
    repeat_list = (
        _repeat_candidates(
            expert=expert, now=now, limit=sum(repeat_slots), exclude=taken
        )
        if any(repeat_slots)
        else []
    )
    fresh = iter(
        _fresh_candidates(
            expert=expert,
            now=now,
            limit=slots - len(repeat_list),
            exclude=taken,
            rng=rng,
        )
    )
    # Repeats take the slots the dice chose, so their position tells nothing.
    repeats = iter(repeat_list)
    for wants_repeat in repeat_slots:
        clip = next(repeats, None) if wants_repeat else None
        if clip is not None:
            picked.append((clip, True))
        elif (clip := next(fresh, None)) is not None:
            picked.append((clip, False))
    expires_at, granted = clip_leases_grant(
        expert=expert,
        holder=holder,
        clips=[(clip.pk, is_repeat) for clip, is_repeat in picked],
        now=now,
        # Expired leases count nowhere; sweeping them is housekeeping, done on a
        # share of requests (own dice, so a caller's seeded rng stays unaffected).
        release_expired=random.random() < _EXPIRED_LEASE_SWEEP_SHARE,
    )
    # A clip another tab took at the same moment is that tab's: not offered here
    # (the page asks again when its queue runs short).
    return [
        Assignment(clip, expires_at, is_repeat)
        for clip, is_repeat in picked
        if clip.pk in granted
    ]


def expert_progress(*, expert) -> tuple[int, int]:
    """(presentations graded, presentations in all); see ``expert_queue_state``."""
    graded, total, _ = expert_queue_state(expert=expert, holder=None)
    return graded, total


def expert_queue_state(
    *, expert, holder: str | None = ""
) -> tuple[int, int, int | None]:
    """(presentations graded, presentations in all, clips the expert holds in
    other tabs than ``holder``, or None with ``holder`` None: not counted); one
    query.

    Hidden repeats count as graded, and the total already holds the repeats
    REPEAT_SHARE plans for the expert's clips (share / (1 − share) of the first
    showings, rounded up): after a repeat as after a first vote, graded grows by
    one and the total stays, so the counter gives nothing away. Only an expert
    given more repeats than planned sees the total grow, one per repeat beyond.
    """
    votes, repeats, open_clips, elsewhere = sql.expert_progress_counts(
        connection, expert_id=expert.pk, holder=holder
    )
    firsts = votes + open_clips
    share = min(max(float(settings.REPEAT_SHARE), 0.0), 0.5)
    planned = math.ceil(share / (1.0 - share) * firsts - 1e-9)
    return votes + repeats, firsts + max(planned, repeats), elsewhere
