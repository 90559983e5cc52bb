"""Reads: votes, clips as each role may see them, and test-retest agreement."""

from __future__ import annotations

from django.db.models import (
    BooleanField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)

from annotation.models import (
    GRADES,
    Clip,
    ClipLease,
    RepeatVote,
    Vote,
)
from annotation.roles import user_is_admin


def vote_context(*, expert_id: int, clip_id: int) -> tuple[Clip | None, dict | None]:
    """What casting a vote checks first, in one statement: the clip (only its id,
    is_active and review loaded; any other field reads the row on access) and
    the expert's lease of it ({"expires_at", "is_repeat"}, or None)."""
    from datetime import UTC

    from django.db import connection
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    from annotation import sql

    row = sql.vote_context_row(connection, expert_id=expert_id, clip_id=clip_id)
    if row is None:
        return None, None
    clip = Clip.from_db(
        connection.alias, ["id", "is_active", "review"], [row[0], bool(row[1]), row[2]]
    )
    if row[3] is None:
        return clip, None
    expires_at = row[3]
    if isinstance(expires_at, str):  # SQLite: text, in UTC
        expires_at = parse_datetime(expires_at)
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, UTC)
    return clip, {"expires_at": expires_at, "is_repeat": bool(row[4])}


def votes_for_user(*, user) -> QuerySet:
    """An admin sees every vote; anyone else only their own."""
    votes = Vote.objects.select_related("clip").order_by("-created_at", "-id")
    if user_is_admin(user=user):
        return votes
    return votes.filter(expert=user)


_EXPERT_VOTE_FIELDS = (
    "clip_id",
    "grade",
    "created_at",
    "updated_at",
    "seconds_spent",
    "repeat",
)


def _expert_vote_rows(model, *, expert, repeat: bool, **filters) -> QuerySet:
    """The expert's votes of one kind as rows of _EXPERT_VOTE_FIELDS."""
    return (
        model.objects.filter(expert=expert, **filters)
        .annotate(repeat=Value(repeat, output_field=BooleanField()))
        .values(*_EXPERT_VOTE_FIELDS)
        .order_by()  # no model ordering (nor any inside a compound statement)
    )


def votes_of_expert(*, expert, created_before=None) -> QuerySet:
    """The expert's votes and hidden-repeat votes in one list, newest first, as
    rows of _EXPERT_VOTE_FIELDS: every grade they gave is there, so their own
    list cannot tell a repeat by its absence (the API names each row by its
    presentation handle, never by a database id)."""
    filters = {} if created_before is None else {"created_at__lte": created_before}
    firsts = _expert_vote_rows(Vote, expert=expert, repeat=False, **filters)
    repeats = _expert_vote_rows(RepeatVote, expert=expert, repeat=True, **filters)
    return firsts.union(repeats, all=True).order_by("-created_at", "-clip_id", "repeat")


def presentation_vote(*, expert, clip_id: int, repeat: bool) -> dict | None:
    """One row of ``votes_of_expert``: the vote given to one presentation."""
    model = RepeatVote if repeat else Vote
    return _expert_vote_rows(
        model, expert=expert, repeat=repeat, clip_id=clip_id
    ).first()


def clips_visible_to(*, user) -> QuerySet:
    clips = Clip.objects.select_related("distribution").order_by("id")
    if user_is_admin(user=user):
        return clips
    # An expert sees only active clips handed to them (a lease) or graded by
    # them: nobody browses the pool and picks what to grade.
    mine = OuterRef("pk")
    return clips.filter(is_active=True, review=Clip.Review.APPROVED).filter(
        Q(Exists(ClipLease.objects.filter(clip=mine, expert=user)))
        | Q(Exists(Vote.objects.filter(clip=mine, expert=user)))
        | Q(Exists(RepeatVote.objects.filter(clip=mine, expert=user)))
    )


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
