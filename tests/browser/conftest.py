"""Fixtures of the browser tests (helpers.py holds the rest)."""

from __future__ import annotations

import pytest

from annotation import services
from tests.browser.helpers import _HANDLES, CHROMIUM, PASSWORD, moving_cell_frames
from tests.servers.plugin import missing_service
from video.io import encode_mp4


@pytest.fixture
def grading_world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REPEAT_SHARE = 0.0  # no hidden repeat may replace a fresh clip here
    settings.VOTE_UNDO_SECONDS = 120
    expert = services.expert_create(
        username="browser-expert", password=PASSWORD, code="EXP-0900"
    )
    patient = services.patient_get_or_create(code="PAT-BROWSER", is_synthetic=True)
    clips = []
    for i in range(4):
        frames = moving_cell_frames(seed=i)
        clips.append(
            services.clip_create(
                patient=patient,
                frames=frames,
                fps=15.0,
                track=[[0.0, 0.0]] * len(frames),
                speed=10.0,
                speed_unit="px/s",
                kinematics={},
                is_synthetic=True,
                video_bytes=encode_mp4(frames, fps=15.0),
            )
        )
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
