"""Writes: votes, their changes within the undo window, the simulated panel's votes.

Races are settled by the database: the unique constraint on (expert, clip) decides
which of two simultaneous votes wins, and changes lock the row they change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from prometheus_client import Counter

from annotation import errors, sql
from annotation.models import (
    GRADES,
    SECONDS_SPENT_MAX,
    Clip,
    RepeatVote,
    Vote,
    VoteHistory,
)
from annotation.roles import user_is_expert

_NUMERIC_GRADES = {str(i + 1): grade for i, grade in enumerate(GRADES)}

# Votes per minute on the monitoring side: rate(spermgrade_votes_recorded_total[5m]).
VOTES_RECORDED = Counter(
    "spermgrade_votes_recorded",
    "Grades recorded by experts (kind: vote, or a hidden repeat)",
    ["kind"],
)


def grade_parse(value: object) -> str:
    """'A'..'E' (any case) or 1..5 → 'A'..'E'; anything else is InvalidGrade."""
    text = str(value).strip().upper() if value is not None else ""
    if isinstance(value, bool):
        text = ""
    if text in GRADES:
        return text
    if text in _NUMERIC_GRADES:
        return _NUMERIC_GRADES[text]
    raise errors.InvalidGrade(
        f"Grade {value!r} is not valid: use one of A, B, C, D, E (or 1-5)."
    )


MAX_SECONDS_SPENT = SECONDS_SPENT_MAX  # a day on one clip is already not grading


def _seconds_parse(value: object) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise errors.InvalidInput(
            f"seconds_spent {value!r} is not a number of seconds."
        ) from None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS_SPENT:
        raise errors.InvalidInput(
            f"seconds_spent must lie between 0 and {MAX_SECONDS_SPENT} "
            f"(a day), got {value!r}."
        )
    return seconds


_ALREADY_VOTED = "You have already graded this clip; change that vote instead."


def _undo_deadline(created_at: datetime) -> datetime:
    return created_at + timedelta(seconds=settings.VOTE_UNDO_SECONDS)


def votes_are_final() -> bool:
    """With "reveal panel after vote" on, the reveal forfeits the undo: a vote
    is final when cast, so nobody changes a grade after seeing the panel."""
    from annotation.selectors.site import site_settings

    return site_settings().reveal_panel_after_vote


def vote_undo_until(*, vote: Vote | RepeatVote) -> datetime | None:
    """When the vote can no longer change; None when it is final already."""
    if vote.is_final or votes_are_final():
        return None
    return _undo_deadline(vote.created_at)


_UNREAD = object()  # vote_create's lease argument: not read by the caller


def _offer_check(
    *,
    expert,
    clip: Clip,
    now: datetime,
    as_repeat: bool | None = None,
    lease: dict | None | object = _UNREAD,
) -> None:
    """A vote needs an offer: a lease of the clip to this expert, live or lapsed
    (kept LEASE_KEEP_SECONDS, so an offline retry lands); with a lapsed one the
    clip must still want votes. A clip already graded is AlreadyVoted (a
    retried send), whatever the lease. ``as_repeat`` is how the clip was
    presented (the handle says): a retried first vote that finds the clip
    leased again as a hidden repeat is AlreadyVoted, not the repeat's grade."""
    from annotation.models import ClipDistribution, ClipLease

    if lease is _UNREAD:
        lease = (
            ClipLease.objects.filter(expert=expert, clip=clip)
            .values("expires_at", "is_repeat")
            .first()
        )
    if lease is None:
        if (
            Vote.objects.filter(expert=expert, clip=clip).exists()
            or RepeatVote.objects.filter(expert=expert, clip=clip).exists()
        ):
            raise errors.AlreadyVoted(_ALREADY_VOTED)
        raise errors.ClipNotOffered(
            "This clip was not handed to you; grade the clips the page "
            "offers (POST /api/clips/next/)."
        )
    if as_repeat is not None and lease["is_repeat"] != as_repeat:
        if Vote.objects.filter(expert=expert, clip=clip).exists() and not as_repeat:
            raise errors.AlreadyVoted(_ALREADY_VOTED)
        raise errors.ClipNotOffered(
            "This clip is not handed to you in that form; grade the clips the "
            "page offers (POST /api/clips/next/)."
        )
    if lease["expires_at"] <= now and not lease["is_repeat"]:
        row = ClipDistribution.objects.filter(clip=clip).first()
        if row is not None and sum(row.counts) >= settings.VOTES_PER_CLIP:
            raise errors.ClipNotOffered(
                "This clip has all the votes it needs now (your hold on it "
                "lapsed); your grade was not needed."
            )


def vote_create(
    *,
    expert,
    clip: Clip,
    grade: str,
    seconds_spent: float = 0.0,
    offered_only: bool = False,
    as_repeat: bool | None = None,
    lease: dict | None | object = _UNREAD,
) -> Vote | RepeatVote:
    """Record the expert's grade of a clip; the server decides if it is a repeat.

    A clip the expert holds as a hidden repeat becomes a RepeatVote (never in the
    distribution); otherwise a Vote, unique per expert and clip by constraint: the
    second of two simultaneous submits gets AlreadyVoted. ``offered_only`` (the
    API's votes) also asks for an offer (``_offer_check``), in the form
    ``as_repeat`` names when the vote came with a presentation handle; ``lease``
    is the expert's lease of the clip when the caller read it with the clip
    (``selectors.vote_context``: None for none), otherwise it is read here;
    the insert takes the lease itself either way.
    """
    grade = grade_parse(grade)
    seconds_spent = _seconds_parse(seconds_spent)
    if not user_is_expert(user=expert):
        raise errors.NotAnExpert("Only members of the experts group can vote.")
    if not clip.is_active:
        raise errors.ClipInactive("This clip has been withdrawn from grading.")
    if clip.review != Clip.Review.APPROVED:
        raise errors.ClipInactive(
            f"This clip is not open for grading (it is {clip.get_review_display()})."
        )
    now = timezone.now()
    if offered_only:
        _offer_check(
            expert=expert, clip=clip, now=now, as_repeat=as_repeat, lease=lease
        )
    final = votes_are_final()
    try:
        insert = (
            _vote_insert_one_statement
            if connection.vendor == "postgresql"
            else _vote_insert
        )
        # Finality is stored with the vote: turning the reveal off later does
        # not make a grade given after seeing the panel changeable.
        vote = insert(
            expert=expert,
            clip=clip,
            grade=grade,
            seconds=seconds_spent,
            now=now,
            final=final,
        )
    except IntegrityError:
        if not Clip.objects.filter(pk=clip.pk).exists():
            raise errors.ClipNotFound("This clip no longer exists.") from None
        raise errors.AlreadyVoted(_ALREADY_VOTED) from None
    counter = VOTES_RECORDED.labels(
        "repeat" if isinstance(vote, RepeatVote) else "vote"
    )
    transaction.on_commit(counter.inc)
    return vote


def _vote_insert(
    *, expert, clip: Clip, grade: str, seconds: float, now: datetime, final: bool
):
    with transaction.atomic():
        # Taking the lease tells whether the clip was handed out as a hidden
        # repeat; a failed insert below rolls the deletion back.
        was_repeat = sql.lease_take(connection, expert_id=expert.pk, clip_id=clip.pk)
        model = RepeatVote if was_repeat else Vote
        vote = model.objects.create(
            expert=expert,
            clip=clip,
            grade=grade,
            created_at=now,
            updated_at=now,
            seconds_spent=seconds,
            is_final=final,
        )
        history = {"repeat_vote": vote, "is_repeat": True} if was_repeat else {}
        VoteHistory.objects.create(
            vote=None if was_repeat else vote,
            expert=expert,
            clip=clip,
            action=VoteHistory.Action.CREATE,
            grade=grade,
            at=now,
            **history,
        )
    return vote


_VOTE_FIELDS = (
    "id",
    "expert_id",
    "clip_id",
    "grade",
    "created_at",
    "updated_at",
    "seconds_spent",
    "is_final",
)


def _vote_insert_one_statement(
    *, expert, clip: Clip, grade: str, seconds: float, now: datetime, final: bool
):
    """PostgreSQL: the same writes as ``_vote_insert`` in one statement."""

    def insert() -> tuple:
        return sql.vote_insert_one_statement(
            connection,
            expert_id=expert.pk,
            clip_id=clip.pk,
            grade=grade,
            seconds=seconds,
            now=now,
            final=final,
        )

    # Inside a caller's transaction a savepoint keeps a duplicate-vote error from
    # breaking that transaction; alone, the statement is atomic by itself.
    if connection.in_atomic_block:
        with transaction.atomic():
            vote_id, repeat_id = insert()
    else:
        vote_id, repeat_id = insert()
    model, pk = (RepeatVote, repeat_id) if repeat_id else (Vote, vote_id)
    vote = model.from_db(
        connection.alias,
        _VOTE_FIELDS,
        (pk, expert.pk, clip.pk, grade, now, now, seconds, final),
    )
    vote.expert, vote.clip = expert, clip
    return vote


def _change(model, *, expert, clip_id: int, grade: str):
    grade = grade_parse(grade)
    now = timezone.now()
    with transaction.atomic():
        vote = (
            model.objects.select_for_update()
            .filter(expert=expert, clip_id=clip_id)
            .first()
        )
        if vote is None:
            raise errors.VoteNotFound("You have no such vote.")
        if vote.is_final or votes_are_final():
            raise errors.VoteFinal(
                "Votes are final here: the panel is revealed after each vote, so "
                "a grade cannot be changed once given."
            )
        if now > _undo_deadline(vote.created_at):
            raise errors.UndoWindowPassed(
                f"The undo window of {settings.VOTE_UNDO_SECONDS} s has passed."
            )
        if vote.grade != grade:
            previous = vote.grade
            vote.grade, vote.updated_at = grade, now
            vote.save(update_fields=["grade", "updated_at"])
            is_repeat = model is RepeatVote
            VoteHistory.objects.create(
                vote=None if is_repeat else vote,
                repeat_vote=vote if is_repeat else None,
                is_repeat=is_repeat,
                expert=expert,
                clip_id=vote.clip_id,
                action=VoteHistory.Action.CHANGE,
                grade=grade,
                previous_grade=previous,
                at=now,
            )
    return vote


def presentation_vote_change(
    *, expert, clip_id: int, repeat: bool, grade: str
) -> Vote | RepeatVote:
    """Change the vote an expert gave to one presentation (first or hidden
    repeat) of a clip, within VOTE_UNDO_SECONDS of casting it (history kept):
    what the API's change URL, named by handle, does."""
    model = RepeatVote if repeat else Vote
    return _change(model, expert=expert, clip_id=clip_id, grade=grade)


def votes_bulk_create_simulated(
    *,
    votes: Iterable[tuple],
    seconds_spent: float = 0.0,
    batch_size: int = 2000,
) -> int:
    """Insert many votes at once for the simulated demo panel, with history rows.

    ``votes`` holds (expert_id, clip_id, grade) or (expert_id, clip_id, grade,
    created_at) tuples. All or nothing; an existing (expert, clip) pair raises
    IntegrityError. The counting triggers fire for these rows as for any vote.
    """
    return _bulk_create_simulated(
        Vote, votes=votes, seconds_spent=seconds_spent, batch_size=batch_size
    )


def repeat_votes_bulk_create_simulated(
    *,
    votes: Iterable[tuple],
    seconds_spent: float = 0.0,
    batch_size: int = 2000,
) -> int:
    """The simulated panel's hidden repeats (RepeatVote), as
    ``votes_bulk_create_simulated`` writes votes: same tuples, history rows marked
    ``is_repeat``. A repeat counts for test–retest only, never in distributions."""
    return _bulk_create_simulated(
        RepeatVote, votes=votes, seconds_spent=seconds_spent, batch_size=batch_size
    )


def _bulk_create_simulated(
    model: type[Vote] | type[RepeatVote],
    *,
    votes: Iterable[tuple],
    seconds_spent: float,
    batch_size: int,
) -> int:
    now = timezone.now()
    rows = []
    for item in votes:
        expert_id, clip_id, grade, *rest = item
        at = rest[0] if rest and rest[0] is not None else now
        rows.append(
            model(
                expert_id=int(expert_id),
                clip_id=int(clip_id),
                grade=grade_parse(grade),
                created_at=at,
                updated_at=at,
                seconds_spent=seconds_spent,
            )
        )
    is_repeat = model is RepeatVote
    with transaction.atomic():
        created = model.objects.bulk_create(rows, batch_size=batch_size)
        if any(vote.pk is None for vote in created):
            created = list(
                model.objects.filter(
                    expert_id__in={v.expert_id for v in rows},
                    clip_id__in={v.clip_id for v in rows},
                )
            )
        VoteHistory.objects.bulk_create(
            [
                VoteHistory(
                    vote_id=None if is_repeat else vote.pk,
                    repeat_vote_id=vote.pk if is_repeat else None,
                    is_repeat=is_repeat,
                    expert_id=vote.expert_id,
                    clip_id=vote.clip_id,
                    action=VoteHistory.Action.CREATE,
                    grade=vote.grade,
                    at=vote.created_at,
                )
                for vote in created
            ],
            batch_size=batch_size,
        )
    return len(rows)
