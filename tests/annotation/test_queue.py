import random
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotation import selectors, services, shuffle
from annotation.models import ClipLease, Vote
from annotation.selectors import queue as queue_selectors
from tests.factories import ClipFactory, ExpertFactory, VoteFactory

pytestmark = pytest.mark.django_db


def _ids(assignments):
    return [a.clip.pk for a in assignments]


def test_queue_never_offers_a_clip_the_expert_graded(expert, settings):
    settings.REPEAT_SHARE = 0.0
    clip_list = ClipFactory.create_batch(6)
    seen = []
    for _ in range(6):
        current = selectors.clip_next_for_expert(expert=expert, count=2)[0]
        assert current.clip.pk not in seen
        seen.append(current.clip.pk)
        services.vote_create(expert=expert, clip=current.clip, grade="B")
    assert sorted(seen) == sorted(c.pk for c in clip_list)
    assert selectors.clip_next_for_expert(expert=expert) == []


def test_queue_returns_current_and_preload_and_keeps_the_preload_next(expert, clips):
    first, second = selectors.clip_next_for_expert(expert=expert, count=2)
    services.vote_create(expert=expert, clip=first.clip, grade="A")
    again = selectors.clip_next_for_expert(expert=expert, count=2)
    assert again[0].clip == second.clip
    assert first.clip.pk not in _ids(again)


def test_a_lease_recreated_after_the_vote_never_offers_the_graded_clip_again(
    expert, clips, settings
):
    # The race: a next-clip request read the lease before the vote and re-granted it
    # after the vote had released it.
    settings.REPEAT_SHARE = 0.0
    first, _ = selectors.clip_next_for_expert(expert=expert, count=2, holder="tab")
    services.vote_create(expert=expert, clip=first.clip, grade="A")
    services.clip_leases_grant(
        expert=expert, holder="tab", clips=[(first.clip.pk, False)], now=timezone.now()
    )
    assert ClipLease.objects.filter(expert=expert, clip=first.clip).exists()
    for _ in range(3):
        offered = selectors.clip_next_for_expert(expert=expert, count=2, holder="tab")
        assert first.clip.pk not in _ids(offered)


def test_two_tabs_of_one_expert_get_different_clips(expert, clips):
    tab_a = selectors.clip_next_for_expert(expert=expert, holder="tab-a")
    tab_b = selectors.clip_next_for_expert(expert=expert, holder="tab-b")
    assert not set(_ids(tab_a)) & set(_ids(tab_b))
    # Reloading a tab gives back what it holds.
    assert _ids(selectors.clip_next_for_expert(expert=expert, holder="tab-a")) == _ids(
        tab_a
    )


def test_abandoned_lease_returns_the_clip_to_the_pool(expert, settings):
    settings.VOTES_PER_CLIP = 1
    settings.REPEAT_SHARE = 0.0
    clip = ClipFactory()
    other = ExpertFactory()
    [held] = selectors.clip_next_for_expert(expert=expert, count=1, holder="a")
    assert held.clip == clip
    # While leased, the clip is "in flight": not handed out to fill a missing vote
    # but still reachable once nothing needier remains.
    needier = ClipFactory()
    assert selectors.clip_next_for_expert(expert=other, count=1)[0].clip == needier
    ClipLease.objects.filter(expert=expert).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    tab_b = selectors.clip_next_for_expert(expert=expert, count=2, holder="b")
    assert clip.pk in _ids(tab_b)


def test_clips_needing_votes_come_first_least_voted_first(expert, settings):
    settings.VOTES_PER_CLIP = 3
    settings.REPEAT_SHARE = 0.0
    full, two, none = ClipFactory.create_batch(3)
    for _ in range(3):
        VoteFactory(clip=full)
    for _ in range(2):
        VoteFactory(clip=two)
    offered = selectors.clip_next_for_expert(expert=expert, count=3)
    assert _ids(offered) == [none.pk, two.pk, full.pk]


def test_each_expert_gets_a_stable_own_random_order(settings):
    settings.REPEAT_SHARE = 0.0
    ClipFactory.create_batch(30)
    experts = [ExpertFactory() for _ in range(4)]
    orders = []
    for expert in experts:
        order = _ids(selectors.clip_next_for_expert(expert=expert, count=5))
        ClipLease.objects.filter(expert=expert).delete()
        assert order == _ids(selectors.clip_next_for_expert(expert=expert, count=5))
        ClipLease.objects.all().delete()
        orders.append(order)
    assert len({tuple(o) for o in orders}) > 1


def test_leased_clips_count_as_votes_in_flight(settings):
    settings.VOTES_PER_CLIP = 1
    settings.REPEAT_SHARE = 0.0
    a, b = ClipFactory.create_batch(2)
    first, second = ExpertFactory(), ExpertFactory()
    [x] = selectors.clip_next_for_expert(expert=first, count=1)
    [y] = selectors.clip_next_for_expert(expert=second, count=1)
    assert {x.clip.pk, y.clip.pk} == {a.pk, b.pk}


def _repeated_clips(expert, *, showings: int, seed: int) -> list[int]:
    """Ask for one clip ``showings`` times (its lease dropped each time, so the
    expert's queue is drawn afresh): the clip ids that came as hidden repeats."""
    rng = random.Random(seed)
    repeated = []
    for _ in range(showings):
        [a] = selectors.clip_next_for_expert(expert=expert, count=1, rng=rng)
        if a.is_repeat:
            repeated.append(a.clip.pk)
        ClipLease.objects.filter(expert=expert).delete()
    return repeated


def test_repeat_share_is_about_the_configured_fraction(expert, settings):
    settings.REPEAT_SHARE = 0.25
    settings.REPEAT_MIN_GAP_CLIPS = 1
    graded = ClipFactory.create_batch(40)
    services.votes_bulk_create_simulated(votes=[(expert.pk, c.pk, "C") for c in graded])
    Vote.objects.update(created_at=timezone.now() - timedelta(days=3))
    ClipFactory.create_batch(200)
    repeats = _repeated_clips(expert, showings=100, seed=1)
    assert 10 <= len(repeats) <= 40


def test_progress_counts_graded_of_all_open(expert, clips, settings):
    services.vote_create(expert=expert, clip=clips[0], grade="A")
    settings.REPEAT_SHARE = 0.0
    assert selectors.expert_progress(expert=expert) == (1, 5)
    # The total holds the planned repeats: 5 first showings × 0.05 / 0.95 = 0.26,
    # rounded up to one; at a share of 0.5, one repeat per first showing.
    settings.REPEAT_SHARE = 0.05
    assert selectors.expert_progress(expert=expert) == (1, 6)
    settings.REPEAT_SHARE = 0.5
    assert selectors.expert_progress(expert=expert) == (1, 10)


def test_progress_leaves_out_votes_on_clips_no_longer_gradable(expert, clips, settings):
    """graded counts every vote; the total counts the votes plus the gradable
    clips without the expert's vote. A voted clip withdrawn afterwards must not
    be taken off the open clips a second time (open = gradable − the expert's
    votes on gradable clips, not − all the expert's votes)."""
    settings.REPEAT_SHARE = 0.0
    for clip in clips[:2]:
        services.vote_create(expert=expert, clip=clip, grade="C")
    ClipFactory(is_active=False)  # never gradable, never counted
    assert selectors.expert_progress(expert=expert) == (2, 5)
    clips[0].is_active = False
    clips[0].save(update_fields=["is_active"])
    # 2 votes + 3 gradable clips without a vote (clips[2:5]).
    assert selectors.expert_progress(expert=expert) == (2, 5)
    clips[3].review = "rejected"
    clips[3].save(update_fields=["review"])
    assert selectors.expert_progress(expert=expert) == (2, 4)
    other = ExpertFactory()
    services.vote_create(expert=other, clip=clips[4], grade="A")
    assert selectors.expert_progress(expert=other) == (1, 3)


def test_expired_leases_are_ignored_then_swept(expert, settings, monkeypatch):
    settings.REPEAT_SHARE = 0.0
    settings.VOTES_PER_CLIP = 1
    clip = ClipFactory()
    monkeypatch.setattr(queue_selectors, "_EXPIRED_LEASE_SWEEP_SHARE", 0.0)
    selectors.clip_next_for_expert(expert=expert, count=1, holder="a")
    ClipLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    # An expired lease is not a vote in flight, even before it is deleted.
    other = ExpertFactory()
    [offered] = selectors.clip_next_for_expert(expert=other, count=1)
    assert offered.clip == clip
    assert ClipLease.objects.filter(expert=expert).exists()
    monkeypatch.setattr(queue_selectors, "_EXPIRED_LEASE_SWEEP_SHARE", 1.0)
    selectors.clip_next_for_expert(expert=expert, count=1, holder="b")
    assert not ClipLease.objects.filter(expert=expert, holder="a").exists()


def test_a_refreshed_expired_lease_does_not_jump_ahead_of_held_clips(expert, settings):
    settings.REPEAT_SHARE = 0.0
    ClipFactory()  # leased, then its lease expires
    selectors.clip_next_for_expert(expert=expert, count=1, holder="t")
    ClipLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    ClipFactory.create_batch(3)
    current, preload = selectors.clip_next_for_expert(
        expert=expert, count=2, holder="t"
    )
    again = selectors.clip_next_for_expert(expert=expert, count=3, holder="t")
    assert _ids(again)[:2] == [current.clip.pk, preload.clip.pk]


def _gaps(order):
    return [b - a for a, b in zip(order, order[1:])]


def test_the_per_expert_order_is_a_real_shuffle_not_arithmetic_runs(settings):
    """The whole queue of 120 clips as one expert walks it: the affine order of
    old (id·a + b mod p) had at most three distinct gaps between neighbouring
    ids (69, 67, 65, 63 …); a shuffle has many, none dominant, and two experts'
    orders are unrelated."""
    settings.REPEAT_SHARE = 0.0
    clips = ClipFactory.create_batch(120)
    ids = sorted(c.pk for c in clips)
    walks = []
    for expert in (ExpertFactory(), ExpertFactory()):
        walk = []
        while True:
            got = selectors.clip_next_for_expert(expert=expert, count=1)
            if not got:
                break
            walk.append(got[0].clip.pk)
            VoteFactory(expert=expert, clip=got[0].clip)
        assert sorted(walk) == ids
        # The database's order is the Python definition of the key.
        key = shuffle.shuffle_key(expert.pk)
        assert walk == sorted(ids, key=lambda i: (shuffle.shuffle_rank(i, key), i))
        walks.append(walk)
    for walk in walks:
        gaps = _gaps(walk)
        assert len(set(gaps)) > 60
        assert max(gaps.count(g) for g in set(gaps)) <= 6
        assert sum(abs(g) == 2 for g in gaps) <= 10
    rank = {i: r for r, i in enumerate(walks[1])}
    first = np.arange(len(ids))
    second = np.array([rank[i] for i in walks[0]])
    spearman = np.corrcoef(first, second)[0, 1]
    assert abs(spearman) < 0.3


def test_a_repeat_needs_both_the_clip_gap_and_the_time_gap(expert, settings):
    """As the README says: at least REPEAT_MIN_GAP_CLIPS graded clips *and*
    REPEAT_MIN_GAP_HOURS hours after the first showing."""
    settings.REPEAT_SHARE = 0.5
    settings.REPEAT_MIN_GAP_CLIPS = 20
    settings.REPEAT_MIN_GAP_HOURS = 24
    ClipFactory.create_batch(60)  # fresh clips to grade
    graded = ClipFactory.create_batch(25)
    services.votes_bulk_create_simulated(votes=[(expert.pk, c.pk, "C") for c in graded])
    votes = Vote.objects.filter(expert=expert).order_by("id")
    # 25 graded clips a minute ago: the clip gap is met for 5, the time gap for none.
    votes.update(created_at=timezone.now() - timedelta(minutes=1))
    assert _repeated_clips(expert, showings=30, seed=3) == []
    # 10 graded clips two days ago: the time gap is met, the clip gap is not.
    Vote.objects.filter(pk__in=list(votes.values_list("pk", flat=True)[10:])).delete()
    votes.update(created_at=timezone.now() - timedelta(days=2))
    assert _repeated_clips(expert, showings=30, seed=3) == []
    # 25 graded two days ago: both gaps are met for the 5 oldest, only they repeat.
    more = ClipFactory.create_batch(15)
    services.votes_bulk_create_simulated(votes=[(expert.pk, c.pk, "B") for c in more])
    newest = list(votes.order_by("-id").values_list("clip_id", flat=True)[:20])
    votes.update(created_at=timezone.now() - timedelta(days=2))
    repeated = set(_repeated_clips(expert, showings=40, seed=5))
    assert repeated and repeated.isdisjoint(newest)
