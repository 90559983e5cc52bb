import math

import pytest
from django.db import connection

from annotation import selectors, services, sql
from annotation.models import ClipDistribution, Vote
from tests.factories import ClipFactory, ExpertFactory, VoteFactory

pytestmark = pytest.mark.django_db


def test_distribution_summary_matches_hand_computation():
    # Votes: A, B, B, E -> counts [1, 2, 0, 0, 1], scores 1, 2, 2, 5.
    d = selectors.distribution_from_counts([1, 2, 0, 0, 1])
    assert d["n_votes"] == 4
    assert d["probs"] == [0.25, 0.5, 0.0, 0.0, 0.25]
    assert d["mode"] == "B"
    assert d["mean_score"] == pytest.approx(2.5)
    assert d["std"] == pytest.approx(math.sqrt(((1.5**2) + 0.25 + 0.25 + 2.5**2) / 4))
    assert d["entropy"] == pytest.approx(1.5)  # -(.25*-2 + .5*-1 + .25*-2) bits


def test_distribution_of_a_clip_without_votes_has_no_statistics():
    d = selectors.distribution_from_counts([0, 0, 0, 0, 0])
    assert d["n_votes"] == 0 and d["probs"] == [0.0] * 5
    assert d["mode"] is None and d["mean_score"] is None and d["entropy"] is None


def test_mode_ties_go_to_the_better_grade():
    assert selectors.distribution_from_counts([0, 3, 0, 3, 0])["mode"] == "B"


def test_database_counts_follow_votes_created_changed_and_deleted():
    clip = ClipFactory()
    experts = [ExpertFactory() for _ in range(4)]
    for expert, grade in zip(experts, "ABBE"):
        services.vote_create(expert=expert, clip=clip, grade=grade)
    d = selectors.distribution_for_clip(clip_id=clip.pk)
    assert d["counts"] == [1, 2, 0, 0, 1]
    assert d["mean_score"] == pytest.approx(2.5)

    vote = Vote.objects.get(expert=experts[3], clip=clip)
    services.presentation_vote_change(
        expert=experts[3], clip_id=vote.clip_id, repeat=False, grade="C"
    )
    assert selectors.distribution_for_clip(clip_id=clip.pk)["counts"] == [1, 2, 1, 0, 0]

    Vote.objects.filter(expert=experts[0]).delete()
    assert selectors.distribution_for_clip(clip_id=clip.pk)["counts"] == [0, 2, 1, 0, 0]
    assert selectors.distribution_recount_mismatches() == []


def test_bulk_update_and_bulk_insert_keep_counts_equal_to_votes():
    clips = ClipFactory.create_batch(3)
    experts = [ExpertFactory() for _ in range(5)]
    services.votes_bulk_create_simulated(
        votes=[
            (e.pk, c.pk, "ABCDE"[i % 5]) for i, e in enumerate(experts) for c in clips
        ]
    )
    Vote.objects.filter(clip=clips[0]).update(grade="E")
    arrays = selectors.distribution_arrays()
    assert arrays.counts.tolist() == [[0, 0, 0, 0, 5], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert arrays.n_votes.tolist() == [5, 5, 5]
    assert selectors.distribution_recount_mismatches() == []


def test_vectorized_distributions_equal_the_per_clip_ones():
    clips = ClipFactory.create_batch(3)
    for grades, clip in zip(["AAB", "CDE", ""], clips):
        for grade in grades:
            VoteFactory(clip=clip, grade=grade)
    arrays = selectors.distribution_arrays()
    per_clip = selectors.distribution_for_clips()
    for i, clip_id in enumerate(arrays.clip_ids.tolist()):
        d = per_clip[clip_id]
        assert arrays.counts[i].tolist() == d["counts"]
        if d["n_votes"]:
            assert arrays.mean_score[i] == pytest.approx(d["mean_score"])
            assert arrays.std[i] == pytest.approx(d["std"])
            assert arrays.entropy[i] == pytest.approx(d["entropy"])
            assert "ABCDE"[arrays.mode[i]] == d["mode"]
        else:
            assert math.isnan(arrays.mean_score[i]) and arrays.mode[i] == -1


def test_every_new_clip_gets_a_zero_distribution_row():
    clip = ClipFactory()
    row = ClipDistribution.objects.get(clip=clip)
    assert row.counts == [0, 0, 0, 0, 0] and row.n_votes == 0


def test_recount_repairs_counts_after_tampering():
    vote = VoteFactory(grade="A")
    ClipDistribution.objects.filter(clip=vote.clip).update(n_a=7, n_votes=7)
    assert selectors.distribution_recount_mismatches() == [vote.clip_id]
    services.distribution_recount()
    assert selectors.distribution_recount_mismatches() == []


def test_trigger_install_is_idempotent():
    sql.install(connection)
    sql.install(connection)
    VoteFactory(grade="D")
    assert selectors.distribution_recount_mismatches() == []


def test_distributions_for_a_long_list_of_ids_return_exactly_those_clips():
    from annotation.models import Clip

    patient = ClipFactory().patient
    Clip.objects.bulk_create([Clip(patient=patient) for _ in range(1200)])
    ids = sorted(Clip.objects.values_list("id", flat=True))
    wanted = ids[::2] + ids[1:200:2]
    VoteFactory(clip_id=wanted[-1], grade="D")
    found = selectors.distribution_for_clips(clip_ids=wanted)
    assert sorted(found) == sorted(wanted)
    assert found[wanted[-1]]["counts"] == [0, 0, 0, 1, 0]
    arrays = selectors.distribution_arrays(clip_ids=wanted)
    assert arrays.clip_ids.tolist() == sorted(wanted)


def test_batch_distributions_equal_the_pure_summary_for_every_clip():
    clips = ClipFactory.create_batch(3)
    for grades, clip in zip(["ABBE", "", "DDDDD"], clips):
        for grade in grades:
            VoteFactory(clip=clip, grade=grade)
    batch = selectors.distribution_for_clips()
    for clip, grades in zip(clips, ["ABBE", "", "DDDDD"]):
        counts = [grades.count(g) for g in "ABCDE"]
        want = selectors.distribution_from_counts(counts)
        got = batch[clip.pk]
        assert got.keys() == want.keys()
        for key in want:
            if isinstance(want[key], float):
                assert got[key] == pytest.approx(want[key])
            else:
                assert got[key] == want[key]


def test_after_migrate_hook_puts_lost_triggers_back():
    # SQLite drops a table's triggers when a migration rebuilds the table.
    from annotation.apps import _reinstall_triggers

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "DROP TRIGGER annotation_vote_count_insert ON annotation_vote"
            )
        else:
            cursor.execute("DROP TRIGGER annotation_vote_count_insert")
    lost = VoteFactory(grade="A")
    assert selectors.distribution_recount_mismatches() == [lost.clip_id]
    _reinstall_triggers(sender=None, using="default")
    services.distribution_recount()
    kept = VoteFactory(grade="B")
    assert selectors.distribution_for_clip(clip_id=kept.clip_id)["counts"] == [
        0,
        1,
        0,
        0,
        0,
    ]
    assert selectors.distribution_recount_mismatches() == []
