"""The model-vs-panel pages: administrators only, drawn from a real registered
version (a tiny run, in process), with the model placed among the experts."""

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from annotation import services as annotation_services
from modeling.metrics import grade_mode
from registry import selectors as registry_selectors
from registry import services
from registry.models import ModelVersion
from tests.factories import ExpertFactory
from tests.registry.conftest import (  # noqa: F401 (fixtures)
    _broker_folders,
    eager_celery,
    make_voted_clips,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def trained(eager_celery):  # noqa: F811
    clips, experts = make_voted_clips()
    services.training_run_create(profile="tiny")
    annotation_services.panel_statistics_refresh(force=True)
    return clips, experts, ModelVersion.objects.get(is_active=True)


def _pages(version, clip):
    return [
        reverse("model_dashboard"),
        reverse("model_dashboard_version", args=[version.pk]),
        reverse("model_clips", args=[version.pk]) + "?filter=split",
        reverse("clip_review", args=[clip.pk]),
    ]


def test_model_pages_are_for_admins_only(trained, client):
    clips, _, version = trained
    expert = Client()
    expert.force_login(ExpertFactory())
    for url in _pages(version, clips[0]):
        assert expert.get(url).status_code == 403, url
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_an_admin_sees_the_model_among_the_experts_and_the_clip_review(trained):
    clips, experts, version = trained
    admin = Client()
    admin.force_login(
        annotation_services.admin_create(username="b", password="p-123456")
    )
    page = admin.get(reverse("model_dashboard"))
    text = page.content.decode()
    assert page.status_code == 200
    assert "closer to the panel than" in text and f"of {len(experts)} experts" in text
    assert "Grade-mode accuracy".lower() in text.lower() and "95 % interval" in text
    assert 'id="versions-metrics"' in text and f"v{version.number}" in text
    # every metric beside its chance floor: the expected figure when each clip
    # is given another clip's panel; for the grade mode, by hand, the chance
    # that two different clips share their mode, sum n_c (n_c - 1) / N (N - 1)
    oof = registry_selectors.version_oof(version=version)
    modes = grade_mode(oof["target"])
    n = len(modes)
    same = sum(c * (c - 1) for c in np.bincount(modes)) / (n * (n - 1))
    rows = {m["label"]: m for m in page.context["metrics"]}
    assert rows["grade-mode accuracy"]["chance"] == pytest.approx(same, abs=0.12)
    assert all(m["chance"] is not None for m in page.context["metrics"])
    assert "balanced accuracy, 4th grade (strict)" in rows
    assert 'id="top-hi-macro"' in text and 'id="top-hi-chance"' in text
    assert "more often than" in text and "smaller in size than" in text
    for key in ("among-experts", "hi", "confusion", "mean-grade", "calibration"):
        assert f'id="{key}"' in text, key
    for which in ("disagree", "split", "model_unsure", "panel_unsure", "nonsense"):
        listed = admin.get(reverse("model_clips", args=[version.pk]), {"filter": which})
        assert listed.status_code == 200 and b"clip " in listed.content
    review = admin.get(reverse("clip_review", args=[clips[0].pk]))
    assert review.status_code == 200
    assert f"v{version.number} (active)".encode() in review.content
    assert admin.get(reverse("clip_review", args=[999999])).status_code == 404
    assert admin.get(reverse("model_dashboard_version", args=[999])).status_code == 404


def test_without_a_version_the_dashboard_says_so(db):
    admin = Client()
    admin.force_login(
        annotation_services.admin_create(username="c", password="p-123456")
    )
    page = admin.get(reverse("model_dashboard"))
    assert page.status_code == 200 and b"No model version is active yet" in page.content
