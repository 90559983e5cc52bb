"""Every dashboard page answers in a few SQL queries, the same number however
many versions, predictions and clips there are (issue 26). The figures behind
them are tested elsewhere; benchmarks/registry_scale.py times these pages at
lab scale."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from annotation import services as annotation_services
from tests.annotation.conftest import session_client
from tests.factories import AdminFactory
from tests.registry.conftest import make_voted_clips
from tests.registry.registry_data import (
    assert_few_queries_however_many_versions,
    queries_of,
    registry_build,
)

PAGES = [
    "panel",
    "expert",
    "clips",
    "clip_review",
    "model",
    "model_version",
    "model_clips",
]


def _urls(data: dict) -> dict[str, str]:
    candidate, clip = data["versions"][1], data["clips"][0]
    return {
        "panel": "/dashboards/",
        "expert": f"/dashboards/experts/{data['experts'][0].pk}/",
        "clips": "/dashboards/clips/?sort=disagreement",
        "clip_review": f"/dashboards/clips/{clip.pk}/",
        "model": "/dashboards/models/",
        "model_version": f"/dashboards/models/{candidate.pk}/",
        "model_clips": f"/dashboards/models/{candidate.pk}/clips/?filter=split",
    }


@pytest.fixture
def dashboard_data(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    clips, experts = make_voted_clips(n_clips=60, n_patients=6, n_experts=4)
    data = registry_build(clips, n_versions=5)
    annotation_services.panel_statistics_refresh(force=True)
    return data | {"experts": experts}


@pytest.mark.parametrize("page", PAGES)
def test_a_dashboard_needs_few_queries_however_many_versions(page, dashboard_data):
    client = session_client(AdminFactory())
    url = _urls(dashboard_data)[page]
    assert_few_queries_however_many_versions(client, url, dashboard_data)


@pytest.mark.parametrize("page", PAGES)
def test_a_dashboard_needs_the_same_queries_with_more_clips(page, dashboard_data):
    client = session_client(AdminFactory())
    url = _urls(dashboard_data)[page]
    before = queries_of(client, url)

    make_voted_clips(n_clips=30, n_patients=3, n_experts=4, seed=1)
    annotation_services.panel_statistics_refresh(force=True)

    assert queries_of(client, url) == before, url


def test_the_clip_review_lists_the_newest_versions_and_the_active_ones_prediction(
    dashboard_data, monkeypatch
):
    from dashboards import views

    monkeypatch.setattr(views, "CLIP_PREDICTIONS", 3)
    client = session_client(AdminFactory())
    clip = dashboard_data["clips"][0]
    html = client.get(f"/dashboards/clips/{clip.pk}/").content.decode()
    table = html[html.index('id="clip-predictions"') :].split("</table>")[0]
    assert table.count("<tr>") == 1 + 3  # the header and the newest three
    assert "v5" in table and "v1 (active)" not in table
    assert "the newest 3" in html
    # The active version (v1, outside the newest three) still draws its chart.
    assert 'data-figure="model"' in html
