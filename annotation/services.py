"""Writes: patients, accounts, clips, votes, leases. Keyword-only and typed.

Races are settled by the database: the unique constraint on (expert, clip) decides
which of two simultaneous votes wins, and changes lock the row they change.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation import db_triggers, errors
from annotation.models import (
    GRADES,
    Clip,
    ClipLease,
    ExpertProfile,
    Job,
    Patient,
    Recording,
    RepeatVote,
    SiteSetting,
    Vote,
    VoteHistory,
)
from annotation.selectors import (
    ADMINS_GROUP,
    EXPERTS_GROUP,
    SITE_SETTINGS_CACHE_KEY,
    user_is_expert,
)

User = get_user_model()

_NUMERIC_GRADES = {str(i + 1): grade for i, grade in enumerate(GRADES)}


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


def _seconds_parse(value: object) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise errors.InvalidInput(
            f"seconds_spent {value!r} is not a number of seconds."
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise errors.InvalidInput(
            f"seconds_spent must be a finite number ≥ 0, got {value!r}."
        )
    return seconds


# --- people ------------------------------------------------------------------------


def patient_get_or_create(*, code: str, is_synthetic: bool = False) -> Patient:
    code = code.strip()
    if not code:
        raise errors.InvalidInput("A patient needs a non-empty pseudonymous code.")
    patient, _ = Patient.objects.get_or_create(
        code=code, defaults={"is_synthetic": is_synthetic}
    )
    return patient


def _group(name: str) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    return group


@transaction.atomic
def expert_create(
    *,
    username: str,
    password: str,
    code: str | None = None,
    years_experience: int = 0,
    is_simulated: bool = False,
    email: str = "",
) -> User:
    """A user in group "experts" with a profile (code defaults to EXP-<id>)."""
    if years_experience < 0:
        raise errors.InvalidInput("years_experience cannot be negative.")
    if User.objects.filter(username=username).exists():
        raise errors.InvalidInput(f"The username {username!r} is taken.")
    if code and ExpertProfile.objects.filter(code=code).exists():
        raise errors.InvalidInput(f"The expert code {code!r} is taken.")
    user = User.objects.create_user(username=username, password=password, email=email)
    user.groups.add(_group(EXPERTS_GROUP))
    ExpertProfile.objects.create(
        user=user,
        code=code or f"EXP-{user.pk:04d}",
        years_experience=years_experience,
        is_simulated=is_simulated,
    )
    return user


@transaction.atomic
def admin_create(*, username: str, password: str, email: str = "") -> User:
    """A staff user in group "admins" (which holds the app's admin permissions)."""
    if User.objects.filter(username=username).exists():
        raise errors.InvalidInput(f"The username {username!r} is taken.")
    user = User.objects.create_user(
        username=username, password=password, email=email, is_staff=True
    )
    user.groups.add(_group(ADMINS_GROUP))
    return user


# --- clips -------------------------------------------------------------------------


def clip_create(
    *,
    patient: Patient,
    frames: np.ndarray,
    fps: float,
    track: list,
    speed: float,
    speed_unit: str,
    kinematics: dict,
    recording: Recording | None = None,
    frame_start: int = 0,
    is_synthetic: bool = False,
    latent_quality: float | None = None,
    video_bytes: bytes | None = None,
) -> Clip:
    """Store a tracked clip: frames as .npy and the mp4 under clips/<id>/.

    ``frame_end`` is exclusive (frame_start + T). The mp4 must be made by the caller
    (workers.video.io.encode_mp4): this app does not encode video.
    """
    if video_bytes is None:
        raise ValueError(
            "clip_create needs video_bytes: encode the frames with "
            "workers.video.io.encode_mp4(frames, fps=fps) first."
        )
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be uint8 (T, H, W, C); got {frames.dtype} {frames.shape}"
        )
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if speed_unit not in Clip.SpeedUnit.values:
        raise ValueError(f"speed_unit must be one of {Clip.SpeedUnit.values}")
    n_frames = int(frames.shape[0])
    buffer = io.BytesIO()
    np.save(buffer, frames, allow_pickle=False)
    with transaction.atomic():
        clip = Clip.objects.create(
            recording=recording,
            patient=patient,
            frame_start=frame_start,
            frame_end=frame_start + n_frames,
            n_frames=n_frames,
            fps=float(fps),
            size_px=int(frames.shape[1]),
            track=[[float(x), float(y)] for x, y in np.asarray(track).reshape(-1, 2)],
            speed=float(speed),
            speed_unit=speed_unit,
            kinematics=kinematics,
            is_synthetic=is_synthetic,
            latent_quality=latent_quality,
        )
        clip.array_file.save(
            f"{clip.pk}/frames.npy", ContentFile(buffer.getvalue()), save=False
        )
        clip.video_file.save(
            f"{clip.pk}/video.mp4", ContentFile(video_bytes), save=False
        )
        clip.save(update_fields=["array_file", "video_file"])
    return clip


# --- votes -------------------------------------------------------------------------


def _undo_deadline(created_at: datetime) -> datetime:
    return created_at + timedelta(seconds=settings.VOTE_UNDO_SECONDS)


def vote_undo_until(*, vote: Vote | RepeatVote) -> datetime:
    return _undo_deadline(vote.created_at)


def vote_create(
    *, expert, clip: Clip, grade: str, seconds_spent: float = 0.0
) -> Vote | RepeatVote:
    """Record the expert's grade of a clip; the server decides if it is a repeat.

    A clip the expert holds as a hidden repeat becomes a RepeatVote (never in the
    distribution); otherwise a Vote, unique per expert and clip by constraint: the
    second of two simultaneous submits gets AlreadyVoted.
    """
    grade = grade_parse(grade)
    seconds_spent = _seconds_parse(seconds_spent)
    if not user_is_expert(user=expert):
        raise errors.NotAnExpert("Only members of the experts group can vote.")
    if not clip.is_active:
        raise errors.ClipInactive(f"Clip {clip.pk} has been withdrawn from grading.")
    now = timezone.now()
    try:
        if connection.vendor == "postgresql":
            vote = _vote_insert_one_statement(
                expert=expert, clip=clip, grade=grade, seconds=seconds_spent, now=now
            )
        else:
            vote = _vote_insert(
                expert=expert, clip=clip, grade=grade, seconds=seconds_spent, now=now
            )
    except IntegrityError:
        if not Clip.objects.filter(pk=clip.pk).exists():
            raise errors.ClipNotFound(f"Clip {clip.pk} does not exist.") from None
        raise errors.AlreadyVoted(
            f"You have already graded clip {clip.pk}; change that vote instead."
        ) from None
    return vote


def _vote_insert(*, expert, clip: Clip, grade: str, seconds: float, now: datetime):
    with transaction.atomic():
        # Taking the lease tells whether the clip was handed out as a hidden
        # repeat; a failed insert below rolls the deletion back.
        was_repeat = _lease_take(expert_id=expert.pk, clip_id=clip.pk)
        model = RepeatVote if was_repeat else Vote
        vote = model.objects.create(
            expert=expert,
            clip=clip,
            grade=grade,
            created_at=now,
            updated_at=now,
            seconds_spent=seconds,
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


# PostgreSQL: lease taken, vote (or repeat) and its history row in one statement,
# so one round trip; the statement is atomic, so a duplicate vote (unique
# constraint) undoes the lease deletion too, as in _vote_insert.
_VOTE_INSERT_SQL = """
WITH lease AS (
  DELETE FROM annotation_cliplease
  WHERE expert_id = %(expert)s AND clip_id = %(clip)s RETURNING is_repeat
), kind AS (
  SELECT COALESCE(bool_or(is_repeat), false) AS is_repeat FROM lease
), v AS (
  INSERT INTO annotation_vote
    (expert_id, clip_id, grade, created_at, updated_at, seconds_spent)
  SELECT %(expert)s, %(clip)s, %(grade)s, %(now)s, %(now)s, %(seconds)s
  FROM kind WHERE NOT kind.is_repeat
  RETURNING id
), r AS (
  INSERT INTO annotation_repeatvote
    (expert_id, clip_id, grade, created_at, updated_at, seconds_spent)
  SELECT %(expert)s, %(clip)s, %(grade)s, %(now)s, %(now)s, %(seconds)s
  FROM kind WHERE kind.is_repeat
  RETURNING id
), h AS (
  INSERT INTO annotation_votehistory
    (vote_id, repeat_vote_id, expert_id, clip_id, action, grade, previous_grade,
     is_repeat, at)
  SELECT v.id, NULL, %(expert)s, %(clip)s, %(action)s, %(grade)s, '', false, %(now)s
  FROM v
  UNION ALL
  SELECT NULL, r.id, %(expert)s, %(clip)s, %(action)s, %(grade)s, '', true, %(now)s
  FROM r
)
SELECT (SELECT id FROM v), (SELECT id FROM r)
"""


def _vote_insert_one_statement(
    *, expert, clip: Clip, grade: str, seconds: float, now: datetime
):
    params = {
        "expert": expert.pk,
        "clip": clip.pk,
        "grade": grade,
        "now": now,
        "seconds": seconds,
        "action": VoteHistory.Action.CREATE.value,
    }

    def insert() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(_VOTE_INSERT_SQL, params)
            return cursor.fetchone()

    # One statement is atomic alone; inside a caller's transaction a savepoint
    # keeps a duplicate-vote error from breaking that transaction.
    if connection.in_atomic_block:
        with transaction.atomic():
            vote_id, repeat_id = insert()
    else:
        vote_id, repeat_id = insert()
    model, pk = (RepeatVote, repeat_id) if repeat_id else (Vote, vote_id)
    vote = model(
        pk=pk,
        expert=expert,
        clip=clip,
        grade=grade,
        created_at=now,
        updated_at=now,
        seconds_spent=seconds,
    )
    vote._state.adding, vote._state.db = False, connection.alias  # a stored row
    return vote


def _lease_take(*, expert_id: int, clip_id: int) -> bool:
    """Delete the expert's lease on the clip; True if it was a hidden repeat."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM annotation_cliplease WHERE expert_id = %s AND clip_id = %s "
            "RETURNING is_repeat",
            [expert_id, clip_id],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _change(model, *, expert, vote_id: int, grade: str):
    grade = grade_parse(grade)
    now = timezone.now()
    with transaction.atomic():
        vote = (
            model.objects.select_for_update().filter(pk=vote_id, expert=expert).first()
        )
        if vote is None:
            raise errors.VoteNotFound(f"You have no vote with id {vote_id}.")
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


def vote_change(*, expert, vote_id: int, grade: str) -> Vote:
    """Change one's own vote within VOTE_UNDO_SECONDS of casting it (history kept)."""
    return _change(Vote, expert=expert, vote_id=vote_id, grade=grade)


def repeat_vote_change(*, expert, repeat_vote_id: int, grade: str) -> RepeatVote:
    return _change(RepeatVote, expert=expert, vote_id=repeat_vote_id, grade=grade)


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
    now = timezone.now()
    rows = []
    for item in votes:
        expert_id, clip_id, grade, *rest = item
        at = rest[0] if rest and rest[0] is not None else now
        rows.append(
            Vote(
                expert_id=int(expert_id),
                clip_id=int(clip_id),
                grade=grade_parse(grade),
                created_at=at,
                updated_at=at,
                seconds_spent=seconds_spent,
            )
        )
    with transaction.atomic():
        created = Vote.objects.bulk_create(rows, batch_size=batch_size)
        if any(vote.pk is None for vote in created):
            created = list(
                Vote.objects.filter(
                    expert_id__in={v.expert_id for v in rows},
                    clip_id__in={v.clip_id for v in rows},
                )
            )
        VoteHistory.objects.bulk_create(
            [
                VoteHistory(
                    vote_id=vote.pk,
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


# --- leases and settings -----------------------------------------------------------


def clip_leases_grant(
    *,
    expert,
    holder: str,
    clips: list[tuple[int, bool]],
    now: datetime,
    release_expired: bool = True,
) -> datetime:
    """Lease (or re-lease) clips to an expert's tab, in order; returns the expiry.

    One upsert (INSERT ... ON CONFLICT DO UPDATE): a clip the expert held before,
    in this tab or as an expired row, gets its row refreshed. ``created_at`` is
    stamped a microsecond apart in the given order, so the tab's held clips keep
    coming back first and a refreshed expired row never jumps ahead of them.

    Expired leases never count anywhere (every query asks ``expires_at > now``), so
    deleting them is housekeeping: ``release_expired`` does it for this expert in
    the same call; callers do it now and then rather than on every request.
    """
    expires_at = now + timedelta(seconds=settings.CLIP_LEASE_SECONDS)
    if release_expired:
        clip_leases_release_expired(expert=expert, before=now)
    if clips:
        ClipLease.objects.bulk_create(
            [
                ClipLease(
                    expert=expert,
                    clip_id=clip_id,
                    is_repeat=is_repeat,
                    holder=holder,
                    expires_at=expires_at,
                    created_at=now + timedelta(microseconds=position),
                )
                for position, (clip_id, is_repeat) in enumerate(clips)
            ],
            update_conflicts=True,
            unique_fields=["expert", "clip"],
            update_fields=["expires_at", "is_repeat", "holder", "created_at"],
        )
    return expires_at


def clip_leases_release_expired(*, expert=None, before: datetime | None = None) -> int:
    """Delete expired leases so their clips return to the pool.

    Expired repeat leases are kept: a vote sent late for a hidden repeat must still
    be recognised as one (vote_create looks for the lease).
    """
    expired = ClipLease.objects.filter(
        expires_at__lte=before or timezone.now(), is_repeat=False
    )
    if expert is not None:
        expired = expired.filter(expert=expert)
    deleted, _ = expired.delete()
    return deleted


def site_setting_update(*, reveal_panel_after_vote: bool) -> SiteSetting:
    setting = SiteSetting.load()
    setting.reveal_panel_after_vote = reveal_panel_after_vote
    setting.save(update_fields=["reveal_panel_after_vote"])
    site_settings_forget()
    return setting


def site_settings_forget() -> None:
    """Drop this process's cached copy (others refresh within 5 s)."""
    from django.core.cache import cache

    cache.delete(SITE_SETTINGS_CACHE_KEY)


def distribution_recount() -> None:
    """Rebuild every clip's counts from the votes (after manual database surgery)."""
    with transaction.atomic():
        db_triggers.recount(connection)


# --- background jobs ---------------------------------------------------------------


def job_create(*, kind: str, params: dict | None = None) -> Job:
    return Job.objects.create(kind=kind, params=params or {})


def job_mark_running(*, job_id: int, celery_task_id: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.RUNNING,
        celery_task_id=celery_task_id,
        updated_at=timezone.now(),
    )


def job_mark_done(*, job_id: int, result: dict) -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.DONE, result=result, updated_at=timezone.now()
    )


def job_mark_failed(*, job_id: int, error: str) -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.FAILED, error_message=error[:5000], updated_at=timezone.now()
    )


def recording_mark_failed(*, recording_id: int, error: str) -> None:
    Recording.objects.filter(pk=recording_id).update(
        status=Recording.Status.FAILED,
        error_message=error[:5000],
        updated_at=timezone.now(),
    )


def panel_snapshot_compute(*, clip_ids: list[int] | None = None) -> dict:
    """Summary of the panel's distributions (what the snapshot job stores)."""
    from annotation.selectors import distribution_arrays

    arrays = distribution_arrays(clip_ids=clip_ids)
    voted = arrays.n_votes > 0
    return {
        "n_clips": int(arrays.clip_ids.size),
        "n_votes": int(arrays.n_votes.sum()),
        "n_clips_complete": int((arrays.n_votes >= settings.VOTES_PER_CLIP).sum()),
        "grade_totals": [int(x) for x in arrays.counts.sum(axis=0)],
        "mean_entropy_bits": float(arrays.entropy[voted].mean())
        if voted.any()
        else None,
    }


def panel_snapshot_request() -> Job:
    """Queue the panel snapshot task (sent once the surrounding transaction commits)."""
    from workers import tasks

    job = job_create(kind="panel_snapshot")
    transaction.on_commit(lambda: tasks.panel_snapshot.delay(job_id=job.pk))
    return job
