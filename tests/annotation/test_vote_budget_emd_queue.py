"""The expected-EMD vote budget in the queue (VOTE_BUDGET_EMD): a clip is no longer
offered once its expected EMD is below the threshold, never before
VOTE_BUDGET_MIN_VOTES; the prior comes from the panel's clips and never enters a
distribution, a snapshot or an export."""

import csv
import io
import json
import random
import zipfile
from collections import Counter

import numpy as np
import pytest

from annotation import budget_emd, selectors, services, sql
from annotation.models import ClipLease, Vote
from annotation.selectors import queue
from exports.bundle import bundle_write
from exports.pseudonyms import clip_pseudonym
from registry import storage
from registry.services import snapshot_create
from tests.annotation.test_vote_budget_emd import _enumerated_expected_emd
from tests.factories import ClipFactory, ExpertFactory
from tests.registry.conftest import make_voted_clips

ALPHA = [0.3, 0.5, 0.6, 0.4, 0.2]


@pytest.fixture
def emd_budget(settings):
    settings.REPEAT_SHARE = 0.0
    settings.VOTES_PER_CLIP = 40
    settings.VOTE_BUDGET_CI_WIDTH = 0.0
    settings.VOTE_BUDGET_EMD = 0.001
    settings.VOTE_BUDGET_MIN_VOTES = 10
    settings.VOTE_BUDGET_RANDOM_SHARE = 0.0
    return settings


@pytest.fixture
def fixed_prior(monkeypatch):
    monkeypatch.setattr(queue, "vote_budget_emd_prior", lambda: np.array(ALPHA))


def _votes(clip, grades, experts):
    services.votes_bulk_create_simulated(
        votes=[(e.pk, clip.pk, g) for e, g in zip(experts, grades, strict=True)]
    )


def _offered(count=10, seed=0):
    ClipLease.objects.all().delete()  # each request sees the same loads
    rng = random.Random(seed)
    return {
        a.clip.pk
        for a in selectors.clip_next_for_expert(
            expert=ExpertFactory(), count=count, rng=rng
        )
    }


@pytest.mark.django_db
def test_a_clip_leaves_the_queue_exactly_when_its_expected_emd_crosses(
    emd_budget, fixed_prior
):
    panel = ExpertFactory.create_batch(10)
    sure, split = ClipFactory.create_batch(2)
    _votes(sure, "A" * 10, panel)
    _votes(split, "AE" * 5, panel)
    # the expectation over all 46,376 ways the last 30 votes can fall
    expected = _enumerated_expected_emd([10, 0, 0, 0, 0], ALPHA, 40)
    assert _enumerated_expected_emd([5, 0, 0, 0, 5], ALPHA, 40) > 1.5 * expected

    emd_budget.VOTE_BUDGET_EMD = expected * (1 + 1e-9)
    assert _offered() == {split.pk}
    emd_budget.VOTE_BUDGET_EMD = expected * (1 - 1e-9)
    assert _offered() == {sure.pk, split.pk}
    # below the minimum it stays open, however sure
    emd_budget.VOTE_BUDGET_EMD = expected * (1 + 1e-9)
    emd_budget.VOTE_BUDGET_MIN_VOTES = 11
    assert _offered() == {sure.pk, split.pk}
    # off: every clip collects up to VOTES_PER_CLIP
    emd_budget.VOTE_BUDGET_MIN_VOTES = 10
    emd_budget.VOTE_BUDGET_EMD = 0.0
    assert _offered() == {sure.pk, split.pk}


@pytest.mark.django_db
def test_an_open_clip_behind_many_stopped_ones_is_still_found(
    emd_budget, fixed_prior, monkeypatch
):
    # The plain order (least loaded first) puts the twelve stopped clips, with ten
    # votes each, before the open clip with eleven: the queue asks again past them.
    asked = []
    fresh_rows = sql.queue_fresh_rows
    monkeypatch.setattr(
        sql,
        "queue_fresh_rows",
        lambda *args, **kwargs: (
            asked.append(kwargs["limit"]) or fresh_rows(*args, **kwargs)
        ),
    )
    emd_budget.VOTE_BUDGET_RANDOM_SHARE = 1.0
    emd_budget.VOTE_BUDGET_EMD = 0.005  # 0.0037 for ten Bs, 0.0088 for the split
    panel = ExpertFactory.create_batch(11)
    stopped = ClipFactory.create_batch(12)
    for clip in stopped:
        _votes(clip, "B" * 10, panel[:10])
    open_clip = ClipFactory()
    _votes(open_clip, "ABCDEABCDEA", panel)
    assert _offered(count=1) == {open_clip.pk}
    assert asked == [3, 12]  # three stopped, then nine more and the open one
    assert _offered(count=3) == {open_clip.pk}


@pytest.mark.django_db
def test_with_only_the_emd_rule_on_the_queue_still_ranks_and_follows_the_model(
    emd_budget, fixed_prior
):
    # No count ranges for the SQL, but a budget is on: least certain first, and
    # the active model's figures first when asked (the registry writes them then).
    assert selectors.vote_budget() == []
    panel = ExpertFactory.create_batch(6)
    sure, unsure, flagged = ClipFactory.create_batch(3)
    _votes(sure, "BBBBBB", panel)
    _votes(unsure, "ABCDEA", panel)
    _votes(flagged, "BBBBBC", panel)
    services.clip_model_priorities_replace(
        rows=[(sure.pk, 0.01, 0.1), (unsure.pk, 0.02, 0.2), (flagged.pk, 0.3, 0.9)],
        version_number=1,
    )
    assert {min(_offered(count=1, seed=s)) for s in range(6)} == {unsure.pk}
    emd_budget.VOTE_BUDGET_MODEL_PRIORITY = "disagreement"
    assert {min(_offered(count=1, seed=s)) for s in range(6)} == {flagged.pk}
    emd_budget.VOTE_BUDGET_EMD = 0.0
    assert selectors.vote_budget() is None


@pytest.mark.django_db
def test_the_prior_is_fitted_on_the_panels_clips_and_waits_for_enough_of_them(
    emd_budget,
):
    from django.core.cache import cache

    emd_budget.VOTE_BUDGET_EMD = 1.0  # any clip with the minimum stops, given a prior
    panel = ExpertFactory.create_batch(10)
    sure = ClipFactory()
    _votes(sure, "C" * 10, panel)
    rng = np.random.default_rng(1)
    for _ in range(budget_emd.MIN_CLIPS_FOR_PRIOR - 2):
        _votes(ClipFactory(), rng.choice(list("ABCDE"), size=3), panel[:3])
    assert queue.vote_budget_emd_prior() is None
    assert sure.pk in _offered(count=40)  # no prior yet: nothing stops

    _votes(ClipFactory(), "BCD", panel[:3])
    cache.clear()
    counts = Counter(Vote.objects.values_list("clip_id", "grade"))
    table = np.array(
        [
            [counts[(clip_id, g)] for g in "ABCDE"]
            for clip_id in sorted({c for c, _ in counts})
        ]
    )
    np.testing.assert_allclose(
        queue.vote_budget_emd_prior(), budget_emd.dirichlet_prior_fit(table)
    )
    assert sure.pk not in _offered(count=40)


def _vote_counts() -> dict[int, list[int]]:
    counts = Counter(Vote.objects.values_list("clip_id", "grade"))
    ids = sorted({clip_id for clip_id, _ in counts})
    return {i: [counts[(i, g)] for g in "ABCDE"] for i in ids}


@pytest.mark.django_db
def test_no_prior_or_prediction_enters_a_distribution_a_snapshot_or_an_export(
    emd_budget, tmp_path
):
    clips, _ = make_voted_clips(n_clips=40, n_patients=8, n_experts=12)
    services.clip_model_priorities_replace(
        rows=[(clip.pk, 0.5, 1.5) for clip in clips], version_number=1
    )
    emd_budget.VOTE_BUDGET_EMD = 0.01
    emd_budget.VOTE_BUDGET_MIN_VOTES = 5
    offered = _offered(count=40)
    alpha = queue.vote_budget_emd_prior()
    assert alpha is not None and len(offered) < len(clips)  # the rule is at work

    votes = _vote_counts()
    for clip_id, row in selectors.distribution_for_clips().items():
        assert row["counts"] == votes[clip_id]
        assert row["probs"] == pytest.approx(np.array(votes[clip_id]) / 12)

    snapshot = snapshot_create(min_votes=1)
    manifest = storage.absolute(snapshot.path) / "manifest.jsonl"
    frozen = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert {int(r["clip_id"]): r["votes"] for r in frozen} == votes

    out = tmp_path / "export.zip"
    bundle_write(out)
    by_pseudonym = {clip_pseudonym(i): c for i, c in votes.items()}
    with zipfile.ZipFile(out) as bundle:
        table = csv.DictReader(io.StringIO(bundle.read("distributions.csv").decode()))
        exported = list(table)
        rows = [json.loads(line) for line in bundle.read("manifest.jsonl").splitlines()]
    assert len(exported) == len(votes)
    for row in exported:
        counts = by_pseudonym[row["clip"]]
        assert [int(row[f"n_{g}"]) for g in "abcde"] == counts
        assert [float(row[f"p_{g}"]) for g in "abcde"] == pytest.approx(
            np.array(counts) / 12, abs=1e-6
        )
    assert {r["clip_id"]: r["votes"] for r in rows} == by_pseudonym
