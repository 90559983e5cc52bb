"""Reads: roles, distributions, the expert's queue, progress.

``clip_next_for_expert`` is the one selector that writes (it leases what it hands
out); the write itself is ``services.clip_leases_grant``.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.utils import timezone

from annotation.models import (
    GRADES,
    Clip,
    ClipDistribution,
    ClipLease,
    RepeatVote,
    SiteSetting,
    Vote,
)

EXPERTS_GROUP = "experts"
ADMINS_GROUP = "admins"
SITE_SETTINGS_CACHE_KEY = "annotation:site-settings"

# --- roles -------------------------------------------------------------------------


ROLE_GROUPS = (EXPERTS_GROUP, ADMINS_GROUP)


_USER_ROLES_SQL: dict[tuple[str, str], tuple[str, list, list]] = {}


def _user_roles_statement(by: str) -> tuple[str, list, list]:
    """SQL loading a user with role flags (by "token" key or by "id"), the user's
    concrete fields, and their converters. Built once per process and database:
    assembling the same ORM query on every request costs milliseconds of CPU."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    key = (connection.vendor, by)
    if key not in _USER_ROLES_SQL:
        user_model = get_user_model()
        meta = user_model._meta
        fields = list(meta.concrete_fields)
        qn = connection.ops.quote_name
        columns = ", ".join(f"u.{qn(f.column)}" for f in fields)
        groups = meta.get_field("groups")
        through = groups.remote_field.through._meta.db_table
        flag = (
            f"EXISTS (SELECT 1 FROM {qn(through)} ug JOIN {qn('auth_group')} g "
            f"ON g.id = ug.{qn(groups.m2m_reverse_name())} "
            f"WHERE ug.{qn(groups.m2m_column_name())} = u.{qn(meta.pk.column)} "
            "AND g.name = %s)"
        )
        flags = ", ".join([flag] * len(ROLE_GROUPS))
        if by == "token":
            token = Token._meta
            sql = (
                f"SELECT {columns}, {flags}, t.{qn('created')} "
                f"FROM {qn(token.db_table)} t JOIN {qn(meta.db_table)} u "
                f"ON u.{qn(meta.pk.column)} = t.{qn('user_id')} "
                f"WHERE t.{qn('key')} = %s"
            )
            extra = [token.get_field("created")]
        else:
            sql = (
                f"SELECT {columns}, {flags} FROM {qn(meta.db_table)} u "
                f"WHERE u.{qn(meta.pk.column)} = %s"
            )
            extra = []
        converters = []
        for field in [*fields, *extra]:
            col = field.get_col("u")
            converters.append(
                connection.ops.get_db_converters(col)
                + col.get_db_converters(connection)
            )
        _USER_ROLES_SQL[key] = (sql, [*fields, *extra], converters)
    return _USER_ROLES_SQL[key]


def user_with_roles(*, token_key: str | None = None, user_id=None):
    """The user (and for a token, its creation time) with the role groups memoised;
    one query. Returns (user, created) or (None, None) when nothing matches."""
    from django.contrib.auth import get_user_model

    by = "token" if token_key is not None else "id"
    sql, fields, converters = _user_roles_statement(by)
    with connection.cursor() as cursor:
        lookup = (
            token_key if by == "token" else get_user_model()._meta.pk.to_python(user_id)
        )
        cursor.execute(sql, [*ROLE_GROUPS, lookup])
        row = cursor.fetchone()
    if row is None:
        return None, None
    n_user, n_roles = len(fields) - (by == "token"), len(ROLE_GROUPS)
    plain = [*row[:n_user], *row[n_user + n_roles :]]
    values = []
    for value, field, field_converters in zip(plain, fields, converters):
        col = field.get_col("u")
        for converter in field_converters:
            value = converter(value, col, connection)
        values.append(value)
    user = get_user_model().from_db(
        connection.alias, [f.attname for f in fields[:n_user]], values[:n_user]
    )
    flags = row[n_user : n_user + n_roles]
    user._spermgrade_groups = {name for name, flag in zip(ROLE_GROUPS, flags) if flag}
    return user, (values[n_user] if by == "token" else None)


def _group_names(user) -> set[str]:
    """The user's role groups, fetched once per user object (so once per request)."""
    cached = getattr(user, "_spermgrade_groups", None)
    if cached is None:
        cached = set(
            user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True)
        )
        user._spermgrade_groups = cached
    return cached


def user_is_admin(*, user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_superuser) or ADMINS_GROUP in _group_names(user)


def user_is_expert(*, user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return EXPERTS_GROUP in _group_names(user)


# --- distributions -----------------------------------------------------------------


def distribution_from_counts(counts: list[int] | tuple[int, ...]) -> dict:
    """Counts A..E → the distribution summary (pure; numbers in, dict out).

    mean_score uses A=1 .. E=5; std is the population standard deviation of the
    scores; entropy is in bits (0 = unanimous, log2(5) ≈ 2.32 = uniform). With no
    votes, probs are zeros and the statistics are None.
    """
    if len(counts) != 5:
        raise ValueError(f"expected 5 counts (A..E), got {len(counts)}")
    counts = [int(c) for c in counts]
    n = sum(counts)
    if n == 0:
        return {
            "counts": counts,
            "probs": [0.0] * 5,
            "n_votes": 0,
            "mode": None,
            "mean_score": None,
            "std": None,
            "entropy": None,
        }
    probs = [c / n for c in counts]
    mean = sum(p * (i + 1) for i, p in enumerate(probs))
    var = sum(p * (i + 1 - mean) ** 2 for i, p in enumerate(probs))
    entropy = -sum(p * math.log2(p) for p in probs if p > 0)
    mode = GRADES[max(range(5), key=lambda i: (counts[i], -i))]
    return {
        "counts": counts,
        "probs": probs,
        "n_votes": n,
        "mode": mode,
        "mean_score": mean,
        "std": math.sqrt(max(var, 0.0)),
        "entropy": entropy + 0.0,
    }


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


_DISTRIBUTION_SQL = (
    "SELECT clip_id, n_a, n_b, n_c, n_d, n_e FROM annotation_clipdistribution"
)


def _distribution_table(clip_ids: list[int] | None) -> np.ndarray:
    """(N, 6) int64 rows [clip_id, n_a .. n_e] in clip order, by raw cursor:
    building 100k model tuples through the ORM costs more than the query."""
    with connection.cursor() as cursor:
        if clip_ids is None:
            cursor.execute(_DISTRIBUTION_SQL + " ORDER BY clip_id")
            rows = cursor.fetchall()
        elif connection.vendor == "postgresql":
            # One array parameter instead of 100,000 placeholders.
            ids = "{" + ",".join(str(int(i)) for i in clip_ids) + "}"
            cursor.execute(
                _DISTRIBUTION_SQL
                + " WHERE clip_id = ANY(%s::bigint[]) ORDER BY clip_id",
                [ids],
            )
            rows = cursor.fetchall()
        else:  # SQLite limits the number of placeholders per statement
            rows = []
            ids = sorted({int(i) for i in clip_ids})
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(
                    f"{_DISTRIBUTION_SQL} WHERE clip_id IN ({marks}) ORDER BY clip_id",
                    chunk,
                )
                rows.extend(cursor.fetchall())
    return np.array(rows, dtype=np.int64).reshape(-1, 6)


def distribution_arrays(*, clip_ids: list[int] | None = None) -> DistributionArrays:
    """All (or some) clips' distributions, vectorized: the fast path for 100k clips.

    The counts come from the trigger-maintained table, so they always equal the votes.
    """
    table = _distribution_table(clip_ids)
    ids, counts = table[:, 0], table[:, 1:]
    n = counts.sum(axis=1)
    safe_n = np.where(n > 0, n, 1)
    probs = counts / safe_n[:, None]
    scores = np.arange(1, 6, dtype=np.float64)
    mean = probs @ scores
    var = probs @ (scores**2) - mean**2
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(probs > 0, np.log2(np.where(probs > 0, probs, 1.0)), 0.0)
    entropy = -(probs * logs).sum(axis=1)
    empty = n == 0
    return DistributionArrays(
        clip_ids=ids,
        counts=counts,
        n_votes=n,
        probs=probs,
        mean_score=np.where(empty, np.nan, mean),
        std=np.where(empty, np.nan, np.sqrt(np.clip(var, 0.0, None))),
        entropy=np.where(empty, np.nan, entropy + 0.0),
        mode=np.where(empty, -1, counts.argmax(axis=1)),
    )


def distribution_for_clips(*, clip_ids: list[int] | None = None) -> dict[int, dict]:
    """{clip_id: distribution dict} (the keys of ``distribution_from_counts``).

    Built from ``distribution_arrays``, so 100,000 clips take a fraction of a second.
    """
    arrays = distribution_arrays(clip_ids=clip_ids)
    empty = arrays.n_votes == 0

    def column(values: np.ndarray) -> list:
        boxed = values.astype(object)
        boxed[empty] = None
        return boxed.tolist()

    modes = np.array([*GRADES, None], dtype=object)[arrays.mode].tolist()
    rows = zip(
        arrays.clip_ids.tolist(),
        arrays.counts.tolist(),
        arrays.probs.tolist(),
        arrays.n_votes.tolist(),
        modes,
        column(arrays.mean_score),
        column(arrays.std),
        column(arrays.entropy),
    )
    return {
        clip_id: {
            "counts": counts,
            "probs": probs,
            "n_votes": n_votes,
            "mode": mode,
            "mean_score": mean,
            "std": std,
            "entropy": entropy,
        }
        for clip_id, counts, probs, n_votes, mode, mean, std, entropy in rows
    }


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


# --- the queue ---------------------------------------------------------------------

_PRIME = 2_147_483_647  # 2**31 - 1
_EXPIRED_LEASE_SWEEP_SHARE = 0.05


@dataclass(frozen=True)
class Assignment:
    """A clip leased to an expert. ``is_repeat`` is never shown to the expert."""

    clip: Clip
    lease_expires_at: datetime
    is_repeat: bool


def _shuffle_key(expert_id: int) -> tuple[int, int]:
    """Per-expert affine permutation of clip ids mod a prime: a stable random order."""
    digest = hashlib.sha256(f"spermgrade-order-{expert_id}".encode()).digest()
    multiplier = int.from_bytes(digest[:4], "big") % (_PRIME - 1) + 1
    offset = int.from_bytes(digest[4:8], "big") % _PRIME
    return multiplier, offset


def _shuffled(queryset: QuerySet, expert_id: int) -> QuerySet:
    multiplier, offset = _shuffle_key(expert_id)
    return queryset.annotate(
        shuffle=(F("id") * Value(multiplier) + Value(offset)) % Value(_PRIME)
    )


_CLIP_QUEUE_FIELDS = ("id", "n_frames", "fps", "size_px", "is_synthetic", "is_active")


def _queue_clip(row: tuple) -> Clip:
    """A Clip holding ``_CLIP_QUEUE_FIELDS`` from a raw SQL row in that order
    (the booleans cast: SQLite returns them as integers)."""
    clip_id, n_frames, fps, size_px, synthetic, active = row
    return Clip.from_db(
        connection.alias,
        _CLIP_QUEUE_FIELDS,
        (clip_id, n_frames, fps, size_px, bool(synthetic), bool(active)),
    )


# One indexed query on both PostgreSQL and SQLite. Live leases are counted once per
# clip in a grouped subquery (the ORM would repeat a correlated count per row).
_FRESH_SQL = """
SELECT c.id, c.n_frames, c.fps, c.size_px, c.is_synthetic, c.is_active
FROM annotation_clip c
LEFT JOIN annotation_clipdistribution d ON d.clip_id = c.id
LEFT JOIN (
    SELECT clip_id, COUNT(*) AS n FROM annotation_cliplease
    WHERE expires_at > %(now)s GROUP BY clip_id
) l ON l.clip_id = c.id
WHERE c.is_active
  AND NOT EXISTS (
    SELECT 1 FROM annotation_vote v WHERE v.clip_id = c.id AND v.expert_id = %(expert)s
  )
  AND NOT EXISTS (
    SELECT 1 FROM annotation_cliplease m
    WHERE m.clip_id = c.id AND m.expert_id = %(expert)s AND m.expires_at > %(now)s
  )
  {exclude}
ORDER BY
  CASE WHEN COALESCE(d.n_votes, 0) + COALESCE(l.n, 0) >= %(wanted)s THEN 1 ELSE 0 END,
  COALESCE(d.n_votes, 0) + COALESCE(l.n, 0),
  (c.id * %(multiplier)s + %(offset)s) %% 2147483647
LIMIT %(limit)s
"""


def _fresh_candidates(*, expert, now: datetime, limit: int, exclude: set[int]) -> list:
    if limit < 1:
        return []
    multiplier, offset = _shuffle_key(expert.pk)
    params = {
        "now": connection.ops.adapt_datetimefield_value(now),
        "expert": expert.pk,
        "wanted": settings.VOTES_PER_CLIP,
        "multiplier": multiplier,
        "offset": offset,
        "limit": limit,
    }
    excluded = ""
    if exclude:
        excluded = "AND c.id NOT IN ({})".format(
            ", ".join(str(int(i)) for i in sorted(exclude))
        )
    with connection.cursor() as cursor:
        cursor.execute(_FRESH_SQL.format(exclude=excluded), params)
        rows = cursor.fetchall()
    return [_queue_clip(row) for row in rows]


_HELD_SQL = """
SELECT c.id, c.n_frames, c.fps, c.size_px, c.is_synthetic, c.is_active, l.is_repeat
FROM annotation_cliplease l JOIN annotation_clip c ON c.id = l.clip_id
WHERE l.expert_id = %(expert)s AND l.holder = %(holder)s AND l.expires_at > %(now)s
  AND c.is_active
  -- A next-clip request that crosses a vote can re-lease the clip just graded;
  -- such a lease is never handed out again (it simply expires).
  AND NOT EXISTS (
    SELECT 1 FROM annotation_vote v
    WHERE v.clip_id = l.clip_id AND v.expert_id = l.expert_id AND NOT l.is_repeat)
  AND NOT EXISTS (
    SELECT 1 FROM annotation_repeatvote r
    WHERE r.clip_id = l.clip_id AND r.expert_id = l.expert_id AND l.is_repeat)
ORDER BY l.created_at, l.id
LIMIT %(limit)s
"""


def _held_clips(*, expert, holder: str, now: datetime, limit: int) -> list:
    """The clips this tab holds under live leases, in the order they were handed
    out, as (clip, is_repeat); raw SQL like the ranking query (no ORM assembly)."""
    params = {
        "expert": expert.pk,
        "holder": holder,
        "now": connection.ops.adapt_datetimefield_value(now),
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_HELD_SQL, params)
        rows = cursor.fetchall()
    return [(_queue_clip(row[:-1]), bool(row[-1])) for row in rows]


def _repeat_candidates(*, expert, now: datetime, limit: int, exclude: set[int]) -> list:
    """Clips the expert graded long enough ago (in clips or hours), never repeated."""
    gap_clips = settings.REPEAT_MIN_GAP_CLIPS
    own_votes = Vote.objects.filter(expert=expert)
    nth_latest = list(
        own_votes.order_by("-created_at").values_list("created_at", flat=True)[
            gap_clips - 1 : gap_clips
        ]
    )
    old_enough = Q(created_at__lte=now - timedelta(hours=settings.REPEAT_MIN_GAP_HOURS))
    if nth_latest:
        old_enough |= Q(created_at__lt=nth_latest[0])
    eligible = (
        own_votes.filter(old_enough, clip__is_active=True)
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
    return list(clips.only(*_CLIP_QUEUE_FIELDS).order_by("shuffle")[:limit])


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
    from annotation import services

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
            expert=expert, now=now, limit=slots - len(repeat_list), exclude=taken
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
    expires_at = services.clip_leases_grant(
        expert=expert,
        holder=holder,
        clips=[(clip.pk, is_repeat) for clip, is_repeat in picked],
        now=now,
        # Expired leases count nowhere; sweeping them is housekeeping, done on a
        # share of requests (own dice, so a caller's seeded rng stays unaffected).
        release_expired=random.random() < _EXPIRED_LEASE_SWEEP_SHARE,
    )
    return [Assignment(clip, expires_at, is_repeat) for clip, is_repeat in picked]


_PROGRESS_SQL = """
SELECT
  (SELECT COUNT(*) FROM annotation_vote WHERE expert_id = %(expert)s)
  + (SELECT COUNT(*) FROM annotation_repeatvote WHERE expert_id = %(expert)s),
  (SELECT COUNT(*) FROM annotation_clip c WHERE c.is_active AND NOT EXISTS (
     SELECT 1 FROM annotation_vote v WHERE v.clip_id = c.id AND v.expert_id = %(expert)s
  ))
"""


def expert_progress(*, expert) -> tuple[int, int]:
    """(clips graded, graded + clips still open to the expert); one query.

    Hidden repeats count as graded too, so the counter moves the same way after a
    repeat as after a first vote and gives nothing away.
    """
    with connection.cursor() as cursor:
        cursor.execute(_PROGRESS_SQL, {"expert": expert.pk})
        graded, open_clips = cursor.fetchone()
    return int(graded), int(graded) + int(open_clips)


def site_settings() -> SiteSetting:
    """The settings singleton, cached for a few seconds (read on every vote)."""
    from django.core.cache import cache

    return cache.get_or_set(SITE_SETTINGS_CACHE_KEY, SiteSetting.load, timeout=5)


def votes_for_user(*, user) -> QuerySet:
    """An admin sees every vote; anyone else only their own."""
    votes = Vote.objects.select_related("clip").order_by("-created_at", "-id")
    if user_is_admin(user=user):
        return votes
    return votes.filter(expert=user)


def clips_visible_to(*, user) -> QuerySet:
    clips = Clip.objects.select_related("distribution").order_by("id")
    if user_is_admin(user=user):
        return clips
    return clips.filter(is_active=True)


def expert_self_consistency(*, expert=None) -> list[dict]:
    """Test–retest agreement per expert from hidden repeats.

    For each expert with repeats: n_repeats, exact_agreement (share of repeats given
    the same grade as the first time) and mean_abs_diff (in grade steps).
    """
    repeats = RepeatVote.objects.annotate(
        first_grade=Subquery(
            Vote.objects.filter(
                expert=OuterRef("expert"), clip=OuterRef("clip")
            ).values("grade")[:1]
        )
    )
    if expert is not None:
        repeats = repeats.filter(expert=expert)
    per_expert: dict[int, list[int]] = {}
    for expert_id, grade, first in repeats.values_list(
        "expert_id", "grade", "first_grade"
    ):
        if first is None:
            continue
        per_expert.setdefault(expert_id, []).append(
            abs(GRADES.index(grade) - GRADES.index(first))
        )
    return [
        {
            "expert_id": expert_id,
            "n_repeats": len(diffs),
            "exact_agreement": sum(d == 0 for d in diffs) / len(diffs),
            "mean_abs_diff": sum(diffs) / len(diffs),
        }
        for expert_id, diffs in sorted(per_expert.items())
    ]
