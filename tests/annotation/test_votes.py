import random
from datetime import timedelta

import numpy as np
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import errors, selectors, services
from annotation.models import Clip, ClipLease, RepeatVote, Vote, VoteHistory
from tests.factories import ClipFactory, ExpertFactory, PatientFactory, tiny_frames

pytestmark = pytest.mark.django_db


def test_second_vote_by_same_expert_is_rejected_by_the_database(expert, clips):
    Vote.objects.create(expert=expert, clip=clips[0], grade="A")
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(expert=expert, clip=clips[0], grade="B")


def test_grade_outside_a_to_e_is_rejected_by_the_database(expert, clips):
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(expert=expert, clip=clips[0], grade="F")


def test_second_vote_through_the_service_raises_already_voted(expert, clips):
    services.vote_create(expert=expert, clip=clips[0], grade="A")
    with pytest.raises(errors.AlreadyVoted):
        services.vote_create(expert=expert, clip=clips[0], grade="B")
    assert Vote.objects.get(expert=expert, clip=clips[0]).grade == "A"


@pytest.mark.parametrize("raw, grade", [("a", "A"), ("E", "E"), ("1", "A"), (5, "E")])
def test_grades_are_accepted_as_letters_or_numbers(raw, grade):
    assert services.grade_parse(raw) == grade


@pytest.mark.parametrize("raw", ["F", "0", "6", "", None, "AB", True])
def test_invalid_grades_name_the_allowed_values(raw):
    with pytest.raises(errors.InvalidGrade, match="A, B, C, D, E"):
        services.grade_parse(raw)


def test_non_experts_cannot_vote(admin_user, clips):
    with pytest.raises(errors.NotAnExpert):
        services.vote_create(expert=admin_user, clip=clips[0], grade="A")


def test_withdrawn_clip_cannot_be_graded(expert):
    clip = ClipFactory(is_active=False)
    with pytest.raises(errors.ClipInactive):
        services.vote_create(expert=expert, clip=clip, grade="A")


def test_negative_seconds_spent_is_rejected(expert, clips):
    with pytest.raises(errors.InvalidInput):
        services.vote_create(expert=expert, clip=clips[0], grade="A", seconds_spent=-1)


def test_change_within_undo_window_keeps_history(expert, clips):
    vote = services.vote_create(expert=expert, clip=clips[0], grade="A")
    services.presentation_vote_change(
        expert=expert, clip_id=vote.clip_id, repeat=False, grade="D"
    )
    vote.refresh_from_db()
    assert vote.grade == "D"
    history = list(VoteHistory.objects.filter(vote=vote).order_by("at", "id"))
    assert [(h.action, h.previous_grade, h.grade) for h in history] == [
        ("create", "", "A"),
        ("change", "A", "D"),
    ]


def test_change_after_undo_window_is_refused(expert, clips, settings):
    vote = services.vote_create(expert=expert, clip=clips[0], grade="A")
    Vote.objects.filter(pk=vote.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.VOTE_UNDO_SECONDS + 1)
    )
    with pytest.raises(errors.UndoWindowPassed, match="undo window"):
        services.presentation_vote_change(
            expert=expert, clip_id=vote.clip_id, repeat=False, grade="B"
        )
    assert Vote.objects.get(pk=vote.pk).grade == "A"


def test_an_expert_cannot_change_someone_elses_vote(expert, other_expert, clips):
    vote = services.vote_create(expert=other_expert, clip=clips[0], grade="A")
    with pytest.raises(errors.VoteNotFound):
        services.presentation_vote_change(
            expert=expert, clip_id=vote.clip_id, repeat=False, grade="B"
        )


def test_voting_releases_the_experts_lease(expert, clips):
    [first, _] = selectors.clip_next_for_expert(expert=expert)
    services.vote_create(expert=expert, clip=first.clip, grade="B")
    assert not ClipLease.objects.filter(expert=expert, clip=first.clip).exists()


def test_bulk_simulated_votes_write_history_rows(clips):
    experts = [ExpertFactory(is_simulated=True) for _ in range(3)]
    n = services.votes_bulk_create_simulated(
        votes=[(e.pk, c.pk, "B") for e in experts for c in clips]
    )
    assert n == 15 == Vote.objects.count()
    assert VoteHistory.objects.filter(action="create").count() == 15
    assert selectors.distribution_for_clip(clip_id=clips[0].pk)["counts"] == [
        0,
        3,
        0,
        0,
        0,
    ]


def test_clip_create_stores_frames_and_video(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    frames = tiny_frames()
    clip = services.clip_create(
        patient=PatientFactory(),
        frames=frames,
        fps=15.0,
        track=[[1, 2]] * 4,
        speed=3.0,
        speed_unit="px/s",
        kinematics={"vcl": 1.0},
        frame_start=10,
        video_bytes=b"\x00\x00\x00\x18ftypmp42",
    )
    assert clip.array_file.name == f"clips/{clip.pk}/frames.npy"
    assert clip.video_file.name == f"clips/{clip.pk}/video.mp4"
    assert np.array_equal(np.load(clip.array_file.path), frames)
    assert (clip.n_frames, clip.frame_start, clip.frame_end, clip.size_px) == (
        4,
        10,
        14,
        8,
    )


def test_clip_create_requires_the_mp4(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(ValueError, match="encode_mp4"):
        services.clip_create(
            patient=PatientFactory(),
            frames=tiny_frames(),
            fps=15.0,
            track=[],
            speed=0.0,
            speed_unit="px/s",
            kinematics={},
        )
    assert not Clip.objects.exists()


# --- hidden repeats ----------------------------------------------------------------


def _grade_all(expert, clip_list, grade="C", age_hours=0.0):
    for clip in clip_list:
        services.vote_create(expert=expert, clip=clip, grade=grade)
    if age_hours:
        Vote.objects.filter(expert=expert).update(
            created_at=timezone.now() - timedelta(hours=age_hours)
        )


def test_repeat_is_stored_as_test_retest_vote_and_never_counted(
    expert, clips, settings
):
    _grade_all(expert, clips, grade="C", age_hours=48)
    settings.REPEAT_SHARE = 1.0
    settings.REPEAT_MIN_GAP_CLIPS = 1  # five graded clips: the default 20 is unmet
    [assignment] = selectors.clip_next_for_expert(expert=expert, count=1)
    assert assignment.is_repeat
    before = selectors.distribution_for_clip(clip_id=assignment.clip.pk)
    result = services.vote_create(expert=expert, clip=assignment.clip, grade="E")
    assert isinstance(result, RepeatVote)
    assert selectors.distribution_for_clip(clip_id=assignment.clip.pk) == before
    assert Vote.objects.get(expert=expert, clip=assignment.clip).grade == "C"
    # The same clip is never repeated twice, nor voted a third time.
    with pytest.raises(errors.AlreadyVoted):
        services.vote_create(expert=expert, clip=assignment.clip, grade="A")
    assert RepeatVote.objects.count() == 1


def test_repeats_wait_for_the_minimum_gap(expert, clips, settings):
    settings.REPEAT_SHARE = 1.0
    settings.REPEAT_MIN_GAP_CLIPS = 10
    settings.REPEAT_MIN_GAP_HOURS = 24
    _grade_all(expert, clips[:3])  # just graded, only 3 clips ago
    offered = selectors.clip_next_for_expert(expert=expert, count=2)
    assert not any(a.is_repeat for a in offered)
    assert {a.clip.pk for a in offered} <= {c.pk for c in clips[3:]}


def test_repeat_needs_enough_clips_and_enough_hours(expert, settings):
    settings.REPEAT_SHARE = 1.0
    settings.REPEAT_MIN_GAP_CLIPS = 4  # only clip 0 has 4 graded clips after it
    settings.REPEAT_MIN_GAP_HOURS = 0.05  # 3 minutes: clips 0 and 1 are old enough
    clip_list = ClipFactory.create_batch(5)
    _grade_all(expert, clip_list)
    # Explicit, distinct vote times (minutes apart): the "clips since" rule must
    # not hang on how fast or how monotonic the wall clock was while the five
    # votes were cast.
    now = timezone.now()
    for minutes_ago, clip in zip([10, 4, 3, 2, 1], clip_list):
        Vote.objects.filter(expert=expert, clip=clip).update(
            created_at=now - timedelta(minutes=minutes_ago)
        )
    rng = random.Random(0)
    [assignment] = selectors.clip_next_for_expert(expert=expert, count=1, rng=rng)
    assert assignment.is_repeat and assignment.clip == clip_list[0]
    services.vote_create(expert=expert, clip=assignment.clip, grade="D")
    # Clip 1 is old enough but has only 3 graded clips after it; clips 2-4 have
    # neither: nothing is due, and nothing else is open.
    assert selectors.clip_next_for_expert(expert=expert, count=1, rng=rng) == []


def test_repeat_change_goes_through_undo_too(expert, clips, settings):
    _grade_all(expert, clips, age_hours=48)
    settings.REPEAT_SHARE = 1.0
    settings.REPEAT_MIN_GAP_CLIPS = 1  # five graded clips: the default 20 is unmet
    [assignment] = selectors.clip_next_for_expert(expert=expert, count=1)
    repeat = services.vote_create(expert=expert, clip=assignment.clip, grade="E")
    changed = services.presentation_vote_change(
        expert=expert, clip_id=repeat.clip_id, repeat=True, grade="D"
    )
    assert changed.grade == "D"
    assert VoteHistory.objects.filter(repeat_vote=repeat, action="change").exists()


def test_self_consistency_compares_repeats_with_first_grades(expert, clips):
    for clip, first in zip(clips[:3], "ABC"):
        Vote.objects.create(expert=expert, clip=clip, grade=first)
    for clip, again in zip(clips[:3], "ADC"):
        RepeatVote.objects.create(expert=expert, clip=clip, grade=again)
    [row] = selectors.expert_self_consistency(expert=expert)
    assert row["n_repeats"] == 3
    assert row["exact_agreement"] == pytest.approx(2 / 3)
    assert row["mean_abs_diff"] == pytest.approx(2 / 3)  # B -> D is 2 steps
