"""The clip span settings reach the pipeline."""

import pytest

from annotation.models import Recording
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_clip_frames_and_fps_come_from_the_settings(settings):
    from workers.preprocess import _pipeline_config

    settings.CLIP_FRAMES, settings.CLIP_FPS = 12, 10.0
    recording = Recording.objects.create(patient=PatientFactory(), max_clips=3)
    config = _pipeline_config(recording)
    assert (config.clip_frames, config.clip_fps, config.max_clips) == (12, 10.0, 3)
