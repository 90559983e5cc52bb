"""What the registry pages cache, and when they compute again: a paired
comparison once per pair until the active version predicts more clips, a
version's panel figures once (the experts' side on every request), the clips to
review once per version for all four lists."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from annotation import services as annotation_services
from registry import comparison, selectors, services
from tests.registry.conftest import make_voted_clips
from tests.registry.registry_data import registry_build


@pytest.fixture
def registry_data(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    clips, _ = make_voted_clips(n_clips=30, n_patients=6, n_experts=4)
    return registry_build(clips, n_versions=3)


def _counting(monkeypatch, module, name: str) -> list:
    calls = []
    real = getattr(module, name)

    def wrapped(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


def test_a_paired_comparison_is_computed_again_only_when_the_active_predicts_more(
    registry_data, monkeypatch
):
    active, candidate = registry_data["active"], registry_data["versions"][1]
    calls = _counting(monkeypatch, comparison, "version_paired_comparison")
    first = comparison.paired_comparisons_cached(candidates=[candidate], active=active)
    again = comparison.paired_comparisons_cached(candidates=[candidate], active=active)
    assert again == first and len(calls) == 1
    assert first[0]["n_clips"] > 0 and "problem" not in first[0]

    new_clips, _ = make_voted_clips(n_clips=2, n_patients=1, n_experts=1, seed=5)
    services.predictions_store(
        version=active,
        rows=[(c.pk, [0.2] * 5, None) for c in new_clips],
        source="final",
    )
    comparison.paired_comparisons_cached(candidates=[candidate], active=active)
    assert len(calls) == 2


def test_the_model_report_reads_the_out_of_fold_file_once_and_the_experts_each_time(
    registry_data, monkeypatch
):
    version = registry_data["versions"][1]
    annotation_services.panel_statistics_refresh(force=True)
    reads = _counting(monkeypatch, selectors, "version_oof")
    first = selectors.version_panel_report(version=version)

    make_voted_clips(n_clips=4, n_patients=2, n_experts=3, seed=2)  # more experts
    annotation_services.panel_statistics_refresh(force=True)
    second = selectors.version_panel_report(version=version)

    assert len(reads) == 1
    assert second["metrics"] == first["metrics"]
    assert second["as_expert"]["n_experts"] > first["as_expert"]["n_experts"]


def test_the_clips_to_review_read_the_file_once_for_all_four_lists(
    registry_data, monkeypatch
):
    version = registry_data["versions"][1]
    reads = _counting(monkeypatch, selectors, "version_oof")
    lists = {
        w: selectors.version_clip_rows(version=version, which=w)
        for w in selectors.REVIEW_FILTERS
    }
    assert len(reads) == 1
    assert all(lists.values())
    emd = [row["emd"] for row in lists["disagree"]]
    assert emd == sorted(emd, reverse=True)
    with pytest.raises(ValueError):
        selectors.version_clip_rows(version=version, which="nonsense")


def test_a_new_versions_figures_are_computed_before_its_first_view_with_a_shared_cache(
    registry_data, monkeypatch, settings, tmp_path
):
    """The worker warms the version's dashboard figures once it is registered; a
    shared cache (here a file cache, as Redis would be) then serves the first
    view without reading the out-of-fold file or bootstrapping again."""
    version = registry_data["versions"][2]
    reads = _counting(monkeypatch, selectors, "version_oof")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    assert selectors.version_panel_figures_warm(version=version) is False
    assert services.version_figures_queue(version=version) is False
    assert reads == []  # per-process cache: the worker's figures would be wasted

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    assert selectors.version_panel_figures_warm(version=version) is True
    assert len(reads) == 1
    report = selectors.version_panel_report(version=version)
    assert len(reads) == 1 and report["n_clips"] > 0
