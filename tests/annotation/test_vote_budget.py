"""The vote budget: a clip stops collecting votes once its distribution is known
(every grade share's 95 % interval narrow enough, after a minimum), and the queue
asks about the least certain clips first, keeping a random share."""

import itertools
import random

import numpy as np
import pytest

from annotation import dispersion, selectors, services
from annotation.models import ClipLease
from tests.factories import ClipFactory, ExpertFactory

GRADES = "ABCDE"


def _compositions(n: int):
    for cuts in itertools.combinations(range(n + 4), 4):
        bounds = (-1, *cuts, n + 4)
        yield [bounds[i + 1] - bounds[i] - 1 for i in range(5)]


def _settled_by_ranges(counts, ranges, min_votes):
    table = {n: (lo, hi) for n, lo, hi in ranges}
    n = sum(counts)
    if n < min_votes or n not in table:
        return False
    lo, hi = table[n]
    return not any(lo <= c <= hi for c in counts)


@pytest.mark.parametrize("ci_width", [0.25, 0.35, 0.5])
def test_the_sql_ranges_decide_exactly_as_the_beta_intervals(ci_width):
    # Every way to spread n = 4 … 16 votes over five grades.
    ranges = dispersion.settled_ranges(ci_width=ci_width, min_votes=4, max_votes=16)
    checked = 0
    for n in range(4, 17):
        counts = np.array(list(_compositions(n)))
        exact = dispersion.clip_settled(counts, ci_width=ci_width, min_votes=4)
        by_ranges = [_settled_by_ranges(c, ranges, 4) for c in counts.tolist()]
        assert exact.tolist() == by_ranges
        checked += len(counts)
    assert checked > 10_000


def test_a_unanimous_clip_settles_and_never_before_the_minimum():
    # ten votes for A: Beta(11, 4) for A, Beta(1, 14) for the others
    assert dispersion.clip_settled([[10, 0, 0, 0, 0]], ci_width=0.45, min_votes=10)
    assert not dispersion.clip_settled([[9, 0, 0, 0, 0]], ci_width=0.45, min_votes=10)
    assert not dispersion.clip_settled([[5, 5, 0, 0, 0]], ci_width=0.45, min_votes=10)


@pytest.fixture
def budget(settings):
    settings.REPEAT_SHARE = 0.0
    settings.VOTES_PER_CLIP = 40
    settings.VOTE_BUDGET_CI_WIDTH = 0.45
    settings.VOTE_BUDGET_MIN_VOTES = 10
    settings.VOTE_BUDGET_RANDOM_SHARE = 0.0
    return settings


def _votes(clip, grades, experts):
    services.votes_bulk_create_simulated(
        votes=[(e.pk, clip.pk, g) for e, g in zip(experts, grades, strict=False)]
    )


@pytest.mark.django_db
def test_the_queue_closes_a_clip_at_the_threshold_and_not_before(budget):
    panel = ExpertFactory.create_batch(10)
    settled, almost, split = ClipFactory.create_batch(3)
    _votes(settled, "A" * 10, panel)  # settled at 10 unanimous votes
    _votes(almost, "A" * 9, panel)  # as sure, but below the minimum of 10
    _votes(split, "AE" * 5, panel)  # 10 votes, split: far from settled
    expert = ExpertFactory()
    offered = [
        a.clip.pk for a in selectors.clip_next_for_expert(expert=expert, count=5)
    ]
    assert settled.pk not in offered
    assert {almost.pk, split.pk} <= set(offered)
    # off again: every clip collects up to VOTES_PER_CLIP
    budget.VOTE_BUDGET_CI_WIDTH = 0.0
    other = ExpertFactory()
    again = [a.clip.pk for a in selectors.clip_next_for_expert(expert=other, count=5)]
    assert settled.pk in again


@pytest.mark.django_db
def test_the_least_certain_clip_comes_first_unless_the_random_share_picks(budget):
    panel = ExpertFactory.create_batch(6)
    sure, unsure = ClipFactory.create_batch(2)
    _votes(sure, "BBBBBB", panel)
    _votes(unsure, "ABCDEA", panel)

    def first_pick(seed):
        ClipLease.objects.all().delete()  # each expert sees the same loads
        expert = ExpertFactory()
        rng = random.Random(seed)
        return selectors.clip_next_for_expert(expert=expert, count=1, rng=rng)[0]

    # least certain first: the split clip, whatever the expert's own order
    assert {first_pick(seed).clip.pk for seed in range(12)} == {unsure.pk}
    # with the random share at 1 every request keeps the plain order (equal loads,
    # then each expert's own shuffle), which does not look at certainty
    budget.VOTE_BUDGET_RANDOM_SHARE = 1.0
    assert {first_pick(seed).clip.pk for seed in range(12)} == {sure.pk, unsure.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("column", ["disagreement", "entropy"])
def test_active_allocation_puts_the_model_flagged_clip_first(budget, column):
    panel = ExpertFactory.create_batch(6)
    sure, unsure, flagged = ClipFactory.create_batch(3)
    _votes(sure, "BBBBBB", panel)
    _votes(unsure, "ABCDEA", panel)
    _votes(flagged, "BBBBBC", panel)  # the panel is nearly sure; the model is not
    services.clip_model_priorities_replace(
        rows=[(sure.pk, 0.01, 0.1), (unsure.pk, 0.02, 0.2), (flagged.pk, 0.3, 0.9)],
        version_number=1,
    )

    def first_pick(seed):
        ClipLease.objects.all().delete()
        rng = random.Random(seed)
        return selectors.clip_next_for_expert(expert=ExpertFactory(), count=1, rng=rng)[
            0
        ]

    # off (the default): the least certain clip first, as before
    assert {first_pick(s).clip.pk for s in range(6)} == {unsure.pk}
    budget.VOTE_BUDGET_MODEL_PRIORITY = column
    assert {first_pick(s).clip.pk for s in range(6)} == {flagged.pk}
    # the random share still keeps the plain order on its requests
    budget.VOTE_BUDGET_RANDOM_SHARE = 1.0
    assert len({first_pick(s).clip.pk for s in range(12)}) > 1
