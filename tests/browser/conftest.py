"""Fixtures of the browser tests (helpers.py holds the rest)."""

from __future__ import annotations

import pytest

from annotation import services
from tests.browser.helpers import _HANDLES, CHROMIUM, PASSWORD, stored_clip
from tests.servers.plugin import missing_service


@pytest.fixture
def grading_world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REPEAT_SHARE = 0.0  # no hidden repeat may replace a fresh clip here
    settings.VOTE_UNDO_SECONDS = 120
    expert = services.expert_create(
        username="browser-expert", password=PASSWORD, code="EXP-0900"
    )
    patient = services.patient_get_or_create(code="PAT-BROWSER", is_synthetic=True)
    clips = [
        stored_clip(patient, seed=i, track=[[0.0, 0.0]] * 16, is_synthetic=True)
        for i in range(4)
    ]
    from annotation.handles import presentation_handle

    _HANDLES.clear()
    for clip in clips:
        _HANDLES[clip.pk] = presentation_handle(
            expert_id=expert.pk, clip_id=clip.pk, repeat=False
        )
    return expert, clips


@pytest.fixture
def chromium_path():
    if not CHROMIUM.exists():
        missing_service(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM
