"""Every registry page and API list answers in a few SQL queries, and the same
number however many versions, runs, snapshots and predictions there are (issue
26: lists paginated, no query per row). benchmarks/registry_scale.py times the
same pages at lab scale."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.annotation.conftest import session_client
from tests.factories import AdminFactory
from tests.registry.conftest import make_voted_clips
from tests.registry.registry_data import (
    assert_few_queries_however_many_versions,
    registry_build,
)


def _urls(data: dict) -> dict[str, str]:
    active, candidate = data["active"], data["versions"][1]
    run = candidate.run_id
    others = "&".join(f"v={v.pk}" for v in data["versions"][1:4])
    return {
        "home": "/registry/",
        "run": f"/registry/runs/{run}/",
        "version": f"/registry/versions/{candidate.pk}/",
        "version_page_2": f"/registry/versions/{candidate.pk}/?page=2",
        "compare_default": "/registry/versions/compare/",
        "compare_three": f"/registry/versions/compare/?{others}",
        "api_profiles": "/api/registry/profiles/",
        "api_runs": "/api/registry/runs/",
        "api_run": f"/api/registry/runs/{run}/",
        "api_versions": "/api/registry/versions/",
        "api_version": f"/api/registry/versions/{active.pk}/",
        "api_predictions": f"/api/registry/versions/{active.pk}/predictions/",
        "api_snapshots": "/api/registry/snapshots/",
    }


@pytest.fixture
def registry_data(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    clips, _ = make_voted_clips(n_clips=60, n_patients=6, n_experts=4)
    return registry_build(clips, n_versions=5)


PAGES = [
    "home",
    "run",
    "version",
    "version_page_2",
    "compare_default",
    "compare_three",
    "api_profiles",
    "api_runs",
    "api_run",
    "api_versions",
    "api_version",
    "api_predictions",
    "api_snapshots",
]


@pytest.mark.parametrize("page", PAGES)
def test_a_registry_page_needs_few_queries_however_many_versions(page, registry_data):
    client = session_client(AdminFactory())
    url = _urls(registry_data)[page]
    assert_few_queries_however_many_versions(client, url, registry_data)


def test_pages_do_not_read_the_snapshots_clip_lists(registry_data):
    client = session_client(AdminFactory())
    for page, url in _urls(registry_data).items():
        client.get(url)  # caches warm
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        read = [q["sql"] for q in captured if '"clip_ids"' in q["sql"]]
        assert not read, (page, read)
