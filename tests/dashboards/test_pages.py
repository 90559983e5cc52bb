"""Dashboards: admins only, the figures from the cached statistics, refreshed when
votes change; the panel statistics equal agreement.py on the same votes."""

import re

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from annotation import agreement, selectors, services
from annotation.models import PanelStatistics, Vote
from tests.factories import ClipFactory, ExpertFactory

pytestmark = pytest.mark.django_db

PAGES = ["panel_dashboard", "clip_explorer"]


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def panel():
    """6 clips, 4 experts: the grade follows the clip, expert 3 is one step harsher."""
    clips = ClipFactory.create_batch(6)
    experts = ExpertFactory.create_batch(4)
    rows = []
    for i, clip in enumerate(clips):
        for e, expert in enumerate(experts):
            grade = min(5, 1 + i % 4 + (1 if e == 3 else 0))
            rows.append((expert.pk, clip.pk, "ABCDE"[grade - 1]))
    services.votes_bulk_create_simulated(votes=rows, seconds_spent=5.0)
    return clips, experts


def _client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin():
    return services.admin_create(username="boss", password="boss-pass-123")


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, name, panel):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("name", [*PAGES, "expert_dashboard"])
def test_experts_are_refused(name, panel):
    clips, experts = panel
    args = [experts[0].pk] if name == "expert_dashboard" else []
    response = _client(experts[0]).get(reverse(name, args=args))
    assert response.status_code == 403


def test_the_panel_dashboard_shows_alpha_and_every_chart(admin, panel):
    clips, experts = panel
    response = _client(admin).get(reverse("panel_dashboard"))
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("alpha-by-month", "mean-std", "modes", "kappa", "convergence"):
        assert f'data-figure="{name}"' in body and f'id="{name}"' in body
    votes = selectors.panel_votes()
    alpha = agreement.krippendorff_alpha(votes.clip, votes.expert, votes.grade)
    assert response.context["data"]["alpha"]["value"] == pytest.approx(alpha)
    assert "/static/plotly/plotly.min.js" in body
    # every script and stylesheet comes from this server (the page's random CSRF
    # token may spell any three letters, so look at the addresses, not the text)
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', body)
    harsh = next(
        e
        for e in response.context["data"]["experts"]
        if e["expert_id"] == experts[3].pk
    )
    assert harsh["bias"] > 0.5


def test_statistics_are_cached_and_recomputed_only_when_votes_change(admin, panel):
    clips, experts = panel
    first = services.panel_statistics_refresh()
    again = services.panel_statistics_refresh()
    assert again.computed_at == first.computed_at  # nothing changed
    assert not selectors.panel_statistics_stale(statistics=again)
    newcomer = ExpertFactory()
    services.votes_bulk_create_simulated(votes=[(newcomer.pk, clips[0].pk, "E")])
    assert selectors.panel_statistics_stale(statistics=again)
    fresh = services.panel_statistics_refresh()
    assert fresh.n_votes == first.n_votes + 1
    assert PanelStatistics.objects.count() == 1


def test_the_expert_page_shows_the_confusion_against_the_rest(admin, panel):
    clips, experts = panel
    response = _client(admin).get(reverse("expert_dashboard", args=[experts[3].pk]))
    assert response.status_code == 200
    detail = response.context["detail"]
    assert detail["n_votes"] == 6 and detail["bias"] > 0.5
    confusion = np.array(detail["confusion"])
    assert confusion.sum() == 6
    # one step harsher: every vote sits right of the panel's mode, or on E
    rows, cols = np.nonzero(confusion)
    assert np.all((cols == rows + 1) | (cols == 4))
    assert (
        _client(admin).get(reverse("expert_dashboard", args=[99999])).status_code == 404
    )


def test_a_fast_grader_is_flagged(admin, settings):
    settings.FAST_GRADING_SECONDS = 10.0
    clip = ClipFactory()
    experts = ExpertFactory.create_batch(2)
    services.votes_bulk_create_simulated(
        votes=[(e.pk, clip.pk, "B") for e in experts], seconds_spent=1.0
    )
    response = _client(admin).get(reverse("expert_dashboard", args=[experts[0].pk]))
    assert response.context["detail"]["too_fast"] is True
    assert 'id="fast-flag"' in response.content.decode()


def test_the_clip_explorer_sorts_by_disagreement_and_filters_by_votes(admin, panel):
    clips, experts = panel
    split = ClipFactory()
    services.votes_bulk_create_simulated(
        votes=[(experts[0].pk, split.pk, "A"), (experts[1].pk, split.pk, "E")]
    )
    response = _client(admin).get(reverse("clip_explorer"), {"sort": "disagreement"})
    assert response.status_code == 200
    rows = list(response.context["page"])
    assert rows[0]["id"] == split.pk and rows[0]["ordinal_dispersion"] == 1.0
    dispersions = [r["ordinal_dispersion"] for r in rows]
    assert dispersions == sorted(dispersions, reverse=True)
    fewer = _client(admin).get(reverse("clip_explorer"), {"min_votes": "3"})
    assert split.pk not in [r["id"] for r in fewer.context["page"]]
    odd = _client(admin).get(
        reverse("clip_explorer"), {"sort": "nope", "min_votes": "x"}
    )
    assert odd.status_code == 200


def test_the_clip_explorer_with_no_clips_says_so(admin):
    response = _client(admin).get(reverse("clip_explorer"), {"page": "7"})
    assert response.status_code == 200
    assert "No clips match." in response.content.decode()


def test_the_panel_dashboard_shows_test_retest_kappa_from_hidden_repeats(admin, panel):
    clips, experts = panel
    before = services.panel_statistics_refresh()
    first = {(v.expert_id, v.clip_id): v.grade for v in Vote.objects.all()}
    again = [(experts[0].pk, c.pk, first[(experts[0].pk, c.pk)]) for c in clips[:4]]
    services.repeat_votes_bulk_create_simulated(votes=again)
    # Hidden repeats change the statistics (their history moves the marker) but
    # never the distributions.
    assert selectors.panel_statistics_stale(statistics=before)
    response = _client(admin).get(reverse("panel_dashboard"))
    rows = {e["expert_id"]: e for e in response.context["data"]["experts"]}
    assert rows[experts[0].pk]["test_retest_kappa"] == pytest.approx(1.0)
    assert rows[experts[0].pk]["n_repeats"] == 4
    assert rows[experts[1].pk]["test_retest_kappa"] is None
    assert response.context["data"]["n_votes"] == before.n_votes
    body = response.content.decode()
    assert "<td>1.00 (4)</td>" in body
