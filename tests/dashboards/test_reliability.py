"""Fleiss' κ, the ICC, Dawid–Skene and the expert-hours on the dashboards: the
numbers on the page equal the reference implementations on the same votes, the
hours equal hand sums, and experts never see any of it."""

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from annotation import agreement, selectors, services
from annotation.services import reliability
from tests.factories import ClipFactory, ExpertFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin():
    return services.admin_create(username="boss", password="boss-pass-123")


@pytest.fixture
def panel(settings):
    """6 complete clips of 4 votes, plus one clip with 2 (left out of κ and ICC)."""
    settings.VOTES_PER_CLIP = 4
    clips = ClipFactory.create_batch(6)
    experts = ExpertFactory.create_batch(4)
    rows = []
    for i, clip in enumerate(clips):
        for e, expert in enumerate(experts):
            grade = 1 + i % 4 + (1 if e == 3 else 0) - (1 if e == 0 else 0)
            grade = max(1, min(5, grade))
            rows.append((expert.pk, clip.pk, "ABCDE"[grade - 1]))
    partial = ClipFactory()
    rows += [(experts[0].pk, partial.pk, "A"), (experts[1].pk, partial.pk, "C")]
    services.votes_bulk_create_simulated(votes=rows, seconds_spent=5.0)
    return clips, experts


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_panel_page_shows_fleiss_kappa_and_icc_equal_to_the_references(
    admin, panel
):
    import pingouin
    from statsmodels.stats.inter_rater import fleiss_kappa

    response = _client(admin).get(reverse("panel_dashboard"))
    assert response.status_code == 200
    shown = response.context["data"]["reliability"]
    assert shown["n_clips"] == 6 and shown["votes_per_clip"] == 4

    votes = selectors.panel_votes()
    complete = [c for c in np.unique(votes.clip) if (votes.clip == c).sum() == 4]
    keep = np.isin(votes.clip, complete)
    counts, _ = agreement.unit_value_counts(
        votes.clip[keep], votes.grade[keep], categories=np.arange(1, 6)
    )
    assert shown["fleiss_kappa"] == pytest.approx(fleiss_kappa(counts), abs=1e-9)
    assert shown["fleiss_kappa"] == pytest.approx(agreement.fleiss_kappa(counts))
    import pandas as pd

    long = pd.DataFrame(
        {
            "clip": votes.clip[keep],
            "seat": np.tile(np.arange(4), len(complete)),
            "grade": votes.grade[keep].astype(float),
        }
    )
    icc = pingouin.intraclass_corr(
        long, targets="clip", raters="seat", ratings="grade"
    ).set_index("Type")["ICC"]
    assert shown["icc_single"] == pytest.approx(icc["ICC(1,1)"], abs=1e-9)
    assert shown["icc_mean"] == pytest.approx(icc["ICC(1,k)"], abs=1e-9)

    body = response.content.decode()
    assert f'id="fleiss-value">{shown["fleiss_kappa"]:.3f}<' in body
    assert f'id="icc-single-value">{shown["icc_single"]:.3f}<' in body
    assert f'id="icc-mean-value">{shown["icc_mean"]:.3f}<' in body
    assert "On the 6 clips with all 4 votes" in body


def test_the_expert_page_shows_dawid_skene_equal_to_agreement_on_the_same_votes(
    admin, panel
):
    clips, experts = panel
    votes = selectors.panel_votes()
    posteriors, confusions = agreement.dawid_skene(
        votes.clip, votes.expert, votes.grade
    )
    raters = np.unique(votes.expert).tolist()
    used = np.unique(votes.grade) - 1
    prior = np.zeros(5)
    prior[used] = posteriors.mean(axis=0)
    harsh = experts[3]
    response = _client(admin).get(reverse("expert_dashboard", args=[harsh.pk]))
    assert response.status_code == 200
    shown = response.context["dawid_skene"]
    expected = np.zeros((5, 5))
    expected[np.ix_(used, used)] = confusions[raters.index(harsh.pk)]
    np.testing.assert_allclose(shown["confusion"], expected, atol=1e-4)
    accuracy = float(prior @ np.diag(expected))
    assert shown["accuracy"] == pytest.approx(accuracy, abs=1e-3)
    body = response.content.decode()
    assert 'data-figure="ds-confusion"' in body and 'id="ds-confusion"' in body
    assert f'id="ds-accuracy">{shown["accuracy"]:.2f}<' in body
    figure = response.context["charts"]["ds-confusion"]
    assert figure["data"][0]["z"] == shown["confusion"]
    # the panel's table carries the same accuracy
    panel_page = _client(admin).get(reverse("panel_dashboard"))
    rows = {e["expert_id"]: e for e in panel_page.context["experts"]}
    assert rows[harsh.pk]["ds_accuracy"] == shown["accuracy"]


def test_experts_see_none_of_the_new_figures(panel):
    clips, experts = panel
    for name, args in (
        ("panel_dashboard", []),
        ("expert_dashboard", [experts[0].pk]),
    ):
        response = _client(experts[0]).get(reverse(name, args=args))
        assert response.status_code == 403
        body = response.content.decode()
        for word in ("Fleiss", "Dawid", "ICC", "Expert-hours"):
            assert word not in body


def _three_experts_one_vote_each():
    """Three clips, three experts, one vote (B) each, taking 10, 20 and 30 s."""
    clips = ClipFactory.create_batch(3)
    experts = ExpertFactory.create_batch(3)
    for expert, clip, seconds in zip(experts, clips, (10.0, 20.0, 30.0), strict=True):
        services.votes_bulk_create_simulated(
            votes=[(expert.pk, clip.pk, "B")], seconds_spent=seconds
        )
    return clips, experts


def test_hours_spent_sum_votes_and_repeats_seconds(admin, settings):
    settings.VOTE_BUDGET_CI_WIDTH = 0.0
    clips, experts = _three_experts_one_vote_each()
    response = _client(admin).get(reverse("panel_dashboard"))
    effort = response.context["data"]["effort"]
    assert effort["hours_votes"] == pytest.approx(1 / 60)  # 60 s
    assert effort["hours_repeats"] == 0.0
    assert effort["votes_not_asked"] == 0 and effort["hours_saved"] == 0.0
    assert "the vote budget is off" in response.content.decode()
    services.repeat_votes_bulk_create_simulated(
        votes=[(experts[0].pk, clips[0].pk, "B")], seconds_spent=90.0
    )
    effort = _client(admin).get(reverse("panel_dashboard")).context["data"]["effort"]
    assert effort["hours_repeats"] == pytest.approx(90 / 3600)
    assert effort["hours_spent"] == pytest.approx(150 / 3600)


def test_hours_saved_are_votes_not_asked_times_the_typical_expert_seconds(
    admin, settings
):
    # every clip with one vote is settled: 3 closed clips, 9 votes not asked each
    settings.VOTES_PER_CLIP = 10
    settings.VOTE_BUDGET_CI_WIDTH = 0.99
    settings.VOTE_BUDGET_MIN_VOTES = 1
    clips, experts = _three_experts_one_vote_each()
    response = _client(admin).get(reverse("panel_dashboard"))
    effort = response.context["data"]["effort"]
    assert effort["n_clips_closed"] == 3 and effort["votes_not_asked"] == 27
    assert effort["typical_seconds"] == 20.0  # median of 10, 20 and 30
    assert effort["hours_saved"] == pytest.approx(27 * 20 / 3600)
    body = response.content.decode()
    assert 'id="hours-saved">0.15<' in body
    assert "27 votes not asked" in body


def test_votes_not_asked_skip_open_and_full_clips():
    counts = np.array(
        [
            [0, 0, 10, 0, 0],  # full: nothing saved
            [0, 4, 0, 0, 0],  # settled early: 6 not asked
            [1, 1, 1, 0, 0],  # still open: nothing saved yet
        ]
    )
    budget = {"ci_width": 0.6, "min_votes": 4}
    assert reliability.votes_not_asked(counts, votes_per_clip=10, budget=budget) == {
        "n_clips_closed": 1,
        "votes_not_asked": 6,
    }
    assert reliability.votes_not_asked(counts, votes_per_clip=10, budget=None) == {
        "n_clips_closed": 0,
        "votes_not_asked": 0,
    }


def test_expert_hours_use_the_median_of_each_experts_median():
    hours = reliability.expert_hours(
        expert=[1, 1, 1, 2, 3],
        seconds=[10.0, 10.0, 100.0, 40.0, 50.0],
        repeat_seconds=0.0,
        not_asked=36,
    )
    assert hours["hours_spent"] == pytest.approx(210 / 3600)
    assert hours["typical_seconds"] == 40.0  # medians 10, 40, 50
    assert hours["hours_saved"] == pytest.approx(36 * 40 / 3600)


def test_too_few_complete_clips_give_no_kappa_or_icc():
    out = reliability.complete_clip_agreement([1, 1, 2], [1, 2, 3], votes_per_clip=2)
    assert out["n_clips"] == 1
    assert out["fleiss_kappa"] is None and out["icc_single"] is None


def test_votes_not_asked_count_the_expected_emd_rule_too():
    from annotation import budget_emd

    counts = np.array(
        [
            [0, 12, 0, 0, 0],  # unanimous
            [3, 3, 3, 3, 0],  # split
            [0, 0, 40, 0, 0],  # full
        ],
        dtype=float,
    )
    alpha = np.ones(5)
    expected = budget_emd.expected_emd(counts[:2], alpha=alpha, total=40)
    assert expected[0] != expected[1]
    threshold = float(expected.mean())  # between the two clips: one stops
    budget = {"ci_width": 0.0, "emd": threshold, "alpha": alpha, "min_votes": 10}
    assert reliability.votes_not_asked(counts, votes_per_clip=40, budget=budget) == {
        "n_clips_closed": 1,
        "votes_not_asked": 40 - 12,  # either open clip has 12 votes
    }
    above = {**budget, "emd": float(expected.max()) * 1.01}  # both stop
    assert reliability.votes_not_asked(counts, votes_per_clip=40, budget=above) == {
        "n_clips_closed": 2,
        "votes_not_asked": 2 * (40 - 12),
    }
    # Never before the minimum.
    budget["min_votes"] = 13
    assert (
        reliability.votes_not_asked(counts, votes_per_clip=40, budget=budget)[
            "n_clips_closed"
        ]
        == 0
    )


def test_the_dashboard_counts_votes_the_emd_rule_saved(settings):
    from annotation.services import reliability as service

    settings.VOTE_BUDGET_CI_WIDTH = 0.0
    settings.VOTE_BUDGET_EMD = 0.5
    settings.VOTE_BUDGET_MIN_VOTES = 2
    budget = service._budget()
    assert budget is not None and budget["emd"] == 0.5
    settings.VOTE_BUDGET_EMD = 0.0
    assert service._budget() is None
