"""End to end: a real recording uploaded in the browser becomes gradable clips.

The Celery task runs eagerly in-process, exactly as the worker would run it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from annotation import services
from annotation.models import Clip, Recording
from config.celery import app, ensure_broker_folders
from tests.conftest import SHARED_DATA
from tests.factories import clip_id_of
from tests.workers import recording_files as rf

pytestmark = pytest.mark.django_db

REAL_VIDEO = SHARED_DATA / "svia_sperm_videos" / "videos" / "S_0001.mp4"


@pytest.fixture(autouse=True)
def eager(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    ensure_broker_folders()
    yield
    app.conf.update(task_always_eager=before[0], task_eager_propagates=before[1])


def logged_in(username: str, *, admin: bool) -> Client:
    create = services.admin_create if admin else services.expert_create
    create(username=username, password=f"{username}-pass-123")
    client = Client()
    assert client.login(username=username, password=f"{username}-pass-123")
    return client


def test_real_recording_uploaded_by_admin_becomes_clips_in_the_expert_queue(
    django_capture_on_commit_callbacks,
):
    if not REAL_VIDEO.is_file():
        pytest.skip(f"real recording {REAL_VIDEO} is absent (no ../shared)")
    admin = logged_in("boss", admin=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = rf.upload(
            admin,
            REAL_VIDEO.read_bytes(),
            name="S_0001.mp4",
            patient_code="SVIA-0002",
            max_clips=3,
            um_per_px="",
            microscope_notes="SVIA sample",
        )

    assert response.status_code == 302
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.DONE, recording.error_message
    assert (recording.width, recording.height, recording.fps) == (698, 528, 30.0)
    clips = list(recording.clips.all())
    assert 1 <= len(clips) <= 3
    for clip in clips:
        frames = np.load(clip.array_file.path)
        assert frames.shape == (16, 150, 150, 3)
        assert clip.video_file.size > 1000
        assert len(clip.track) == 16 and clip.speed_unit == "px/s"
        assert clip.kinematics["vcl"] == pytest.approx(clip.speed)
        assert clip.is_active and not clip.is_synthetic

    status = admin.get(reverse("recording_status", args=[recording.pk])).json()
    assert status["finished"] and status["n_clips"] == len(clips)
    page = admin.get(reverse("recording_detail", args=[recording.pk])).content
    assert reverse("clip_video", args=[clips[0].pk]).encode() in page

    # New clips of a real recording wait for review: none reaches an expert yet.
    assert {clip.review for clip in clips} == {"pending"}
    expert = logged_in("grader", admin=False)
    assert expert.post(reverse("api-clip-next")).json()["clips"] == []
    for clip in clips:
        approved = admin.post(
            reverse("api-clip-review", args=[clip.pk]),
            {"decision": "approve"},
            content_type="application/json",
        )
        assert approved.status_code == 200, approved.content
    queue = expert.post(reverse("api-clip-next")).json()["clips"]
    assert queue and {clip_id_of(c["id"]) for c in queue} <= {c.pk for c in clips}
    video = expert.get(queue[0]["video_url"])
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"


def test_rerun_from_the_page_replaces_clips_without_duplicates(
    django_capture_on_commit_callbacks,
):
    admin = logged_in("boss", admin=True)
    with django_capture_on_commit_callbacks(execute=True):
        rf.upload(admin, rf.synthetic_mp4(), patient_code="SYN-1", max_clips=2)
    recording = Recording.objects.get()
    # The synthetic field needs the synthetic detector preset.
    Recording.objects.filter(pk=recording.pk).update(is_synthetic=True)
    rerun = reverse("recording_rerun", args=[recording.pk])
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(rerun, {"mode": "auto"})
    first = set(recording.clips.values_list("pk", flat=True))
    assert first

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(rerun, {"mode": "auto"})

    recording.refresh_from_db()
    assert recording.status == Recording.Status.DONE, recording.error_message
    second = set(recording.clips.values_list("pk", flat=True))
    assert len(second) == len(first) == Clip.objects.count()
    assert not first & second


def test_corrupt_upload_ends_failed_with_message_through_the_task(
    django_capture_on_commit_callbacks,
):
    admin = logged_in("boss", admin=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = rf.upload(
            admin,
            rf.truncated_mp4(),
            name="cut.mp4",
            patient_code="P-9",
            max_clips=2,
            um_per_px="",
        )
    assert response.status_code == 302
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.FAILED
    assert "truncated" in recording.error_message
    assert not Clip.objects.exists()
    page = admin.get(reverse("recording_detail", args=[recording.pk])).content
    assert b"truncated" in page


def test_task_failure_marks_the_recording_failed(monkeypatch):
    from workers import preprocess, tasks

    patient = services.patient_get_or_create(code="P-10")
    recording = Recording.objects.create(patient=patient, status="queued")

    def explode(**_):
        raise RuntimeError("worker bug")

    monkeypatch.setattr(preprocess, "_preprocess", explode)
    result = tasks.recording_preprocess.delay(recording_id=recording.pk)
    assert result.failed()
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert "worker bug" in recording.error_message


def test_manual_mode_shows_first_frame_detections_and_follows_clicked_sperm(
    django_capture_on_commit_callbacks,
):
    admin = logged_in("boss", admin=True)
    with django_capture_on_commit_callbacks(execute=True):
        rf.upload(
            admin, rf.synthetic_mp4(), patient_code="SYN-2", mode="manual", max_clips=2
        )
    recording = Recording.objects.get()
    status = admin.get(reverse("recording_status", args=[recording.pk])).json()
    assert status["status"] == "uploaded" and status["preview_ready"]
    image = admin.get(reverse("recording_first_frame", args=[recording.pk]))
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content)[:4] == b"\x89PNG"
    detections = admin.get(reverse("recording_detections", args=[recording.pk]))
    assert detections.json()["width"] == 320

    truth = rf.synthetic_recording()
    cell = next(i for i, t in truth.tracks.items() if not np.isnan(t[:16]).any())
    point = truth.tracks[cell][0].round(1).tolist()
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            reverse("recording_targets", args=[recording.pk]),
            {"targets": json.dumps([point])},
        )

    recording.refresh_from_db()
    assert recording.status == Recording.Status.DONE, recording.error_message
    (clip,) = recording.clips.all()
    assert clip.track[0] == pytest.approx(point, abs=0.5)
