"""Recording preprocessing: recordings become clips; bad input ends in a clear error.

Every bad input must leave the recording *failed* with a message a person can act
on, return normally (the worker carries on) and store no clip.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from django.core.files.base import ContentFile

from annotation import services
from annotation.models import Clip, Recording
from tests.workers import recording_files as rf
from workers import preprocess
from workers.demo_recordings import demo_recordings_process

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def patient(db):
    return services.patient_get_or_create(code="PAT-REC")


def make_recording(patient, data: bytes, name="rec.mp4", **fields) -> Recording:
    """A stored recording that skipped the upload checks (the worker's own checks)."""
    recording = Recording(
        patient=patient,
        sha256=hashlib.sha256(data).hexdigest(),
        original_name=name,
        **fields,
    )
    recording.source.save(name, ContentFile(data), save=False)
    recording.save()
    return recording


def synthetic(patient, **fields) -> Recording:
    fields = {"is_synthetic": True, "um_per_px": 0.5, "max_clips": 3, **fields}
    return make_recording(patient, rf.synthetic_mp4(), name="field.mp4", **fields)


def test_synthetic_recording_becomes_clips_with_arrays_videos_tracks_kinematics(
    patient,
):
    recording = synthetic(patient)

    outcome = preprocess.recording_preprocess_run(recording_id=recording.pk)

    recording.refresh_from_db()
    assert outcome.status == Recording.Status.DONE, recording.error_message
    assert recording.status == Recording.Status.DONE
    assert recording.progress_percent == 100.0
    assert recording.frames_per_s and recording.frames_per_s > 0
    assert (recording.width, recording.height, recording.n_frames) == (320, 240, 20)
    clips = list(recording.clips.all())
    assert 1 <= len(clips) <= 3
    for clip in clips:
        frames = np.load(clip.array_file.path)
        assert frames.shape == (16, 150, 150, 3) and frames.dtype == np.uint8
        assert clip.video_file.read(12)[4:8] == b"ftyp"
        assert len(clip.track) == 16 and clip.frame_end == clip.frame_start + 16
        assert clip.speed_unit == "um/s"
        assert {"vcl", "vsl", "vap", "lin", "str", "wob", "alh", "bcf"} <= set(
            clip.kinematics
        )
        assert clip.kinematics["motility_class"]
        assert clip.speed == pytest.approx(clip.kinematics["vcl"])
        assert clip.is_active and clip.is_synthetic and clip.patient_id == patient.pk
    image, _ = preprocess.services.recording_preview_names(recording_id=recording.pk)
    assert recording.source.storage.exists(image)  # shown on the recording's page
    # Every track counted for the recording's motility, more than the kept clips.
    motility = recording.motility
    assert motility["source"] == "all tracks" and motility["unit"] == "um/s"
    assert motility["n_tracks"] >= len(clips)
    assert sum(motility["counts"].values()) == motility["n_tracks"]


def test_running_preprocessing_again_replaces_clips_without_duplicates(
    patient, django_capture_on_commit_callbacks
):
    recording = synthetic(patient)
    preprocess.recording_preprocess_run(recording_id=recording.pk)
    first = set(recording.clips.values_list("pk", flat=True))
    first_files = [c.array_file.path for c in recording.clips.all()]

    with django_capture_on_commit_callbacks(execute=True):
        preprocess.recording_preprocess_run(recording_id=recording.pk)

    second = set(recording.clips.values_list("pk", flat=True))
    assert len(second) == len(first) and not first & second
    assert Clip.objects.filter(recording=recording).count() == len(first)
    assert not any(os.path.exists(p) for p in first_files)


def test_clicked_targets_are_followed_in_manual_mode(patient):
    truth = rf.synthetic_recording()
    cell = next(
        i for i, t in truth.tracks.items() if not np.isnan(t[:16]).any()
    )  # a cell in view for the whole clip
    start = truth.tracks[cell][0].tolist()
    recording = synthetic(patient, mode=Recording.Mode.MANUAL, targets=[start])

    outcome = preprocess.recording_preprocess_run(recording_id=recording.pk)

    assert outcome.status == Recording.Status.DONE, outcome.message
    (clip,) = recording.clips.all()
    error = np.linalg.norm(np.asarray(clip.track) - truth.tracks[cell][:16], axis=1)
    assert np.median(error) < 5.0
    assert clip.frame_start == 0


def test_manual_mode_without_targets_fails_with_advice(patient):
    recording = synthetic(patient, mode=Recording.Mode.MANUAL, targets=[])
    outcome = preprocess.recording_preprocess_run(recording_id=recording.pk)
    recording.refresh_from_db()
    assert outcome.status == recording.status == Recording.Status.FAILED
    assert "click them on the first frame" in recording.error_message


BAD_INPUTS = [
    pytest.param(rf.truncated_mp4, "truncated", id="truncated-mp4"),
    pytest.param(rf.zero_frame_avi, "holds no frame", id="zero-frames"),
    pytest.param(rf.png_bytes, "is not a video file", id="png-renamed-mp4"),
    pytest.param(lambda: rf.TEXT_BYTES, "not a video file", id="text-renamed-mp4"),
    pytest.param(rf.unsupported_codec_mp4, "codec", id="unsupported-codec"),
]


@pytest.mark.parametrize(("make", "expected"), BAD_INPUTS)
def test_bad_input_ends_in_clear_error_and_no_clips(patient, make, expected):
    recording = make_recording(patient, make(), name="bad.mp4", max_clips=3)

    outcome = preprocess.recording_preprocess_run(recording_id=recording.pk)

    recording.refresh_from_db()
    assert outcome.status == recording.status == Recording.Status.FAILED
    assert expected in recording.error_message
    assert "bad.mp4" in recording.error_message or "codec" in expected
    assert not Clip.objects.exists()


def test_failed_rerun_keeps_the_earlier_clips_and_adds_none(patient):
    recording = synthetic(patient)
    preprocess.recording_preprocess_run(recording_id=recording.pk)
    before = set(recording.clips.values_list("pk", flat=True))
    with open(recording.source.path, "r+b") as handle:
        handle.truncate(len(rf.synthetic_mp4()) // 2)

    outcome = preprocess.recording_preprocess_run(recording_id=recording.pk)

    assert outcome.status == Recording.Status.FAILED
    assert set(recording.clips.values_list("pk", flat=True)) == before


def test_recording_longer_than_the_frame_limit_is_refused(patient, settings):
    settings.RECORDING_MAX_FRAMES = 10
    recording = synthetic(patient)
    preprocess.recording_preprocess_run(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert "exceed the limit of 10 frames" in recording.error_message
    assert not recording.clips.exists()


def test_recording_with_absurd_frame_size_is_refused(patient, settings):
    settings.RECORDING_MAX_PIXELS = 100 * 100
    recording = synthetic(patient)
    preprocess.recording_preprocess_run(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert "320x240" in recording.error_message


def test_missing_file_on_the_server_fails_clearly(patient):
    recording = synthetic(patient)
    recording.source.storage.delete(recording.source.name)
    preprocess.recording_preprocess_run(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert "missing on the server" in recording.error_message


def test_worker_carries_on_after_bad_input(patient):
    bad = make_recording(patient, rf.png_bytes(), name="bad.mp4")
    good = synthetic(patient)
    assert preprocess.recording_preprocess_run(recording_id=bad.pk).status == "failed"
    assert preprocess.recording_preprocess_run(recording_id=good.pk).status == "done"


def test_unexpected_error_marks_failed_and_is_raised(patient, monkeypatch):
    recording = synthetic(patient)

    def explode(**_):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(preprocess.services, "clips_replace_for_recording", explode)
    with pytest.raises(RuntimeError):
        preprocess.recording_preprocess_run(recording_id=recording.pk)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert "disk on fire" in recording.error_message
    assert not Clip.objects.exists()


def test_progress_is_written_while_processing(patient, monkeypatch):
    seen = []
    original = preprocess.services.recording_update_progress

    def spy(**kwargs):
        seen.append(kwargs)
        original(**kwargs)

    monkeypatch.setattr(preprocess, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(preprocess.services, "recording_update_progress", spy)
    recording = synthetic(patient)
    preprocess.recording_preprocess_run(recording_id=recording.pk)
    assert seen and all(0 <= s["percent"] <= 99 for s in seen)
    assert seen[-1]["frames_per_s"] > 0


def test_inspect_stores_first_frame_and_detections(patient):
    recording = synthetic(patient)
    preprocess.recording_inspect_run(recording_id=recording.pk)
    image, detections = preprocess.services.recording_preview_names(
        recording_id=recording.pk
    )
    storage = recording.source.storage
    assert storage.open(image).read(8) == b"\x89PNG\r\n\x1a\n"
    payload = json.loads(storage.open(detections).read())
    assert (payload["width"], payload["height"]) == (320, 240)
    assert len(payload["detections"]) >= 3


def test_demo_recording_turns_into_clips_with_ground_truth_quality(db):
    (recording,) = demo_recordings_process(
        n_recordings=1, n_sperm=12, n_frames=20, width=320, height=240, max_clips=3
    )
    recording.refresh_from_db()
    assert recording.is_synthetic and recording.status == Recording.Status.DONE
    clips = list(recording.clips.all())
    assert clips and all(c.is_active and c.is_synthetic for c in clips)
    assert any(c.latent_quality is not None for c in clips)
    # Idempotent: a second call renders nothing new and keeps the clips.
    demo_recordings_process(
        n_recordings=1, n_sperm=12, n_frames=20, width=320, height=240, max_clips=3
    )
    assert Recording.objects.count() == 1
    assert set(recording.clips.values_list("pk", flat=True)) == {c.pk for c in clips}


def test_demo_preprocesses_synthetic_recordings_rendered_by_demo_data(db):
    from annotation.demo import demo_recordings_ensure

    (waiting,), _ = demo_recordings_ensure(
        n_recordings=1, seed=0, n_patients=1, width=320, height=240, n_frames=20,
        n_sperm=12,
    )  # fmt: skip
    assert waiting.status == Recording.Status.UPLOADED

    demo_recordings_process(n_recordings=0)

    waiting.refresh_from_db()
    assert waiting.status == Recording.Status.DONE, waiting.error_message
    assert waiting.clips.filter(is_active=True).exists()


def test_time_limit_stops_processing_with_a_clear_message_and_no_clips(
    patient, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    def too_slow(**_):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(preprocess.services, "clips_replace_for_recording", too_slow)
    recording = synthetic(patient)
    outcome = preprocess.recording_preprocess_run(recording_id=recording.pk)
    recording.refresh_from_db()
    assert outcome.status == recording.status == Recording.Status.FAILED
    assert "CELERY_TASK_TIME_LIMIT_CPU" in recording.error_message
    assert not recording.clips.exists()
