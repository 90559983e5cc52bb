"""Recording pages and services: who may upload, what is refused and why, targets,
status, and the all-or-nothing replacement of a recording's clips."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation import services
from annotation.models import Clip, Recording
from annotation.services import enqueue
from tests.factories import clip_spec
from tests.workers import recording_files as rf
from tests.workers.recording_files import upload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Hashing passwords properly costs a second per login; these tests log in a lot.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.MEDIA_ROOT


@pytest.fixture
def sent(monkeypatch):
    """Records the tasks sent to the worker by name (after commit)."""
    calls: list[tuple[str, int]] = []
    short = {
        enqueue.RECORDING_PREPROCESS: "preprocess",
        enqueue.RECORDING_INSPECT: "inspect",
    }

    class Broker:
        conf = SimpleNamespace(task_always_eager=False)

        def send_task(self, name, *, kwargs):
            calls.append((short[name], kwargs["recording_id"]))

    monkeypatch.setattr(enqueue, "current_app", Broker())
    return calls


@pytest.fixture
def admin_client(client):
    services.admin_create(username="boss", password="boss-pass-123")
    client.login(username="boss", password="boss-pass-123")
    return client


@pytest.fixture
def expert_client(client):
    services.expert_create(username="grader", password="grader-pass-123")
    client.login(username="grader", password="grader-pass-123")
    return client


# --- who may ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        reverse("recording_list"),
        reverse("recording_upload"),
        reverse("recording_detail", args=[1]),
        reverse("recording_status", args=[1]),
    ],
)
def test_anonymous_visitor_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_expert_cannot_upload_a_recording(expert_client, sent):
    assert expert_client.get(reverse("recording_upload")).status_code == 403
    response = upload(expert_client, rf.synthetic_mp4())
    assert response.status_code == 403
    assert not Recording.objects.exists() and not sent


def test_expert_cannot_see_recordings(expert_client):
    assert expert_client.get(reverse("recording_list")).status_code == 403


def test_member_of_operators_group_can_upload(client, sent, django_user_model):
    user = django_user_model.objects.create_user("op", password="op-pass-123")
    user.groups.add(Group.objects.get_or_create(name="operators")[0])
    client.login(username="op", password="op-pass-123")
    assert upload(client, rf.synthetic_mp4()).status_code == 302
    assert Recording.objects.count() == 1


# --- upload ----------------------------------------------------------------------


def test_admin_upload_stores_the_file_and_queues_preprocessing_after_commit(
    admin_client, sent, django_capture_on_commit_callbacks
):
    data = rf.synthetic_mp4()
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, data, fps="15")

    recording = Recording.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("recording_detail", args=[recording.pk])
    assert sent == [("preprocess", recording.pk)]
    assert recording.status == Recording.Status.QUEUED
    assert recording.patient.code == "P-0042"
    assert recording.original_name == "field.mp4"
    assert (recording.um_per_px, recording.fps, recording.max_clips) == (0.5, 15, 5)
    assert recording.source.read() == data
    assert "field" not in recording.source.name  # stored under its hash


def test_manual_upload_asks_the_worker_for_the_first_frame(
    admin_client, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, rf.synthetic_mp4(), mode="manual")
    assert response.status_code == 302
    recording = Recording.objects.get()
    assert sent == [("inspect", recording.pk)]
    assert recording.mode == Recording.Mode.MANUAL
    assert recording.status == Recording.Status.UPLOADED


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (rf.png_bytes(), "image.mp4", "looks like a PNG image"),
        (rf.TEXT_BYTES, "notes.mp4", "looks like a text file"),
        (b"\x00" * 2048, "zeros.avi", "is not a video"),
        (rf.synthetic_mp4(), "field.exe", "does not have a video file extension"),
    ],
    ids=["png-renamed", "text-renamed", "binary-noise", "wrong-extension"],
)
def test_upload_that_is_not_a_video_is_refused_with_a_reason(
    admin_client, sent, data, name, expected
):
    response = upload(admin_client, data, name=name)
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert not Recording.objects.exists() and not sent


def test_upload_over_the_size_limit_is_refused(admin_client, sent, settings):
    settings.MAX_UPLOAD_MB = 1
    data = rf.synthetic_mp4()
    data = data + b"\x00" * (1024 * 1024 + 10 - len(data))
    response = upload(admin_client, data)
    assert response.status_code == 413
    assert "MAX_UPLOAD_MB" in response.content.decode()
    assert not Recording.objects.exists() and not sent


def test_duplicate_upload_names_the_earlier_recording(admin_client, sent):
    assert upload(admin_client, rf.synthetic_mp4()).status_code == 302
    first = Recording.objects.get()

    response = upload(admin_client, rf.synthetic_mp4(), name="copy.mp4")

    assert response.status_code == 409
    body = response.content.decode()
    assert f"already uploaded as recording #{first.pk}" in body
    assert reverse("recording_detail", args=[first.pk]) in body
    assert Recording.objects.count() == 1


def test_invalid_form_fields_are_reported(admin_client, sent):
    response = upload(admin_client, rf.synthetic_mp4(), um_per_px="-1", max_clips=0)
    assert response.status_code == 400
    assert not Recording.objects.exists()


def test_service_rejects_empty_file():
    patient = services.patient_get_or_create(code="P-1")
    with pytest.raises(services.RecordingRejected, match="empty"):
        services.recording_create_from_upload(
            file=ContentFile(b"", name="a.mp4"), patient=patient
        )


# --- pages and status ------------------------------------------------------------


def make_recording(**fields) -> Recording:
    patient = services.patient_get_or_create(code="P-7")
    return services.recording_create_from_upload(
        file=ContentFile(rf.synthetic_mp4(), name="field.mp4"),
        patient=patient,
        **fields,
    )


def test_status_endpoint_reports_progress_as_json(admin_client):
    recording = make_recording()
    services.recording_mark_processing(recording_id=recording.pk)
    services.recording_update_progress(
        recording_id=recording.pk, percent=42.26, frames_per_s=180.04
    )
    payload = admin_client.get(reverse("recording_status", args=[recording.pk])).json()
    assert payload["status"] == "processing"
    assert payload["progress_percent"] == 42.3
    assert payload["frames_per_s"] == 180.0
    assert payload["finished"] is False
    assert payload["n_clips"] == 0


def test_status_poll_reads_one_row_and_never_the_storage(
    admin_client, monkeypatch, django_assert_num_queries
):
    from django.core.files.storage import default_storage

    recording = make_recording()
    services.recording_preview_mark_ready(recording_id=recording.pk)
    admin_client.get(reverse("recording_status", args=[recording.pk]))  # warm up

    def no_storage(*_):
        raise AssertionError("the status poll must not touch the storage")

    monkeypatch.setattr(default_storage, "exists", no_storage)
    # session, user with roles, the recording with its clip count
    with django_assert_num_queries(3):
        payload = admin_client.get(
            reverse("recording_status", args=[recording.pk])
        ).json()
    assert payload["preview_ready"] is True and payload["n_clips"] == 0


def test_status_of_a_missing_recording_is_json_404(admin_client):
    response = admin_client.get(reverse("recording_status", args=[999]))
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


def test_detail_page_shows_failure_message_and_list_links_it(admin_client):
    recording = make_recording()
    services.recording_mark_failed(
        recording_id=recording.pk, message="the file looks truncated"
    )
    detail = admin_client.get(reverse("recording_detail", args=[recording.pk]))
    assert detail.status_code == 200
    assert "the file looks truncated" in detail.content.decode()
    listing = admin_client.get(reverse("recording_list")).content.decode()
    assert reverse("recording_detail", args=[recording.pk]) in listing


def test_clicked_targets_are_stored_and_processing_starts_in_manual_mode(
    admin_client, sent, django_capture_on_commit_callbacks
):
    recording = make_recording(mode=Recording.Mode.MANUAL)
    Recording.objects.filter(pk=recording.pk).update(width=320, height=240)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("recording_targets", args=[recording.pk]),
            {"targets": json.dumps([[10, 20], [100.5, 200.25]])},
        )
    assert response.status_code == 302
    recording.refresh_from_db()
    assert recording.targets == [[10.0, 20.0], [100.5, 200.25]]
    assert recording.mode == Recording.Mode.MANUAL
    assert recording.status == Recording.Status.QUEUED
    assert sent == [("preprocess", recording.pk)]


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ("[[400, 20]]", "outside the 320×240 px frame"),
        ("[]", "Click at least one sperm"),
        ("not json", "not valid JSON"),
        ('[["a", 1]]', "list of [x, y] points"),
    ],
)
def test_bad_targets_are_refused_with_a_message(admin_client, sent, targets, expected):
    recording = make_recording(mode=Recording.Mode.MANUAL)
    Recording.objects.filter(pk=recording.pk).update(width=320, height=240)
    response = admin_client.post(
        reverse("recording_targets", args=[recording.pk]),
        {"targets": targets},
        follow=True,
    )
    assert expected in response.content.decode()
    recording.refresh_from_db()
    assert recording.status == Recording.Status.UPLOADED and not sent


def _worker_on(recording):
    """A live worker's heartbeat on the recording's preprocessing."""
    from django.utils import timezone

    from jobs.models import Heartbeat

    now = timezone.now()
    return Heartbeat.objects.create(
        subject=f"recording:{recording.pk}",
        host="elsewhere",
        pid=1,
        started_at=now,
        beat_at=now,
    )


def test_recording_being_processed_cannot_be_queued_twice(admin_client, sent):
    from django.utils import timezone

    from jobs.models import Heartbeat

    recording = make_recording()
    services.recording_mark_processing(recording_id=recording.pk)
    now = timezone.now()
    beat = _worker_on(recording)
    response = admin_client.post(
        reverse("recording_rerun", args=[recording.pk]), follow=True
    )
    assert "already processing" in response.content.decode()
    assert not sent
    # Its worker died (the heartbeat went stale): running it again is allowed.
    Heartbeat.objects.filter(pk=beat.pk).update(
        beat_at=now - timezone.timedelta(hours=1)
    )
    admin_client.post(reverse("recording_rerun", args=[recording.pk]))
    recording.refresh_from_db()
    assert recording.status == Recording.Status.QUEUED  # sent once it commits


def test_first_frame_is_404_until_the_worker_wrote_it(admin_client):
    recording = make_recording()
    url = reverse("recording_first_frame", args=[recording.pk])
    assert admin_client.get(url).status_code == 404


# --- clip replacement ------------------------------------------------------------


def test_replacing_clips_twice_leaves_one_active_set(
    django_capture_on_commit_callbacks,
):
    recording = make_recording()
    with django_capture_on_commit_callbacks(execute=True):
        services.clips_replace_for_recording(
            recording=recording, clips=[clip_spec(1), clip_spec(2)]
        )
        services.clips_replace_for_recording(
            recording=recording, clips=[clip_spec(3), clip_spec(4)]
        )
    clips = list(recording.clips.all())
    assert len(clips) == 2 and all(c.is_active for c in clips)
    assert sorted(int(np.load(c.array_file.path)[0, 0, 0, 0]) for c in clips) == [3, 4]


def test_failure_midway_keeps_the_old_clips_and_leaves_no_new_files(media):
    recording = make_recording()
    old = services.clips_replace_for_recording(
        recording=recording, clips=[clip_spec(1)]
    )
    files_before = {p for p in media.rglob("*.npy")}
    bad = clip_spec(2) | {"fps": -1.0}  # clip_create refuses it

    with pytest.raises(ValueError):
        services.clips_replace_for_recording(
            recording=recording, clips=[clip_spec(5), bad]
        )

    assert list(recording.clips.values_list("pk", flat=True)) == [old[0].pk]
    assert {p for p in media.rglob("*.npy")} == files_before


def test_graded_clips_are_withdrawn_not_deleted_when_clips_are_replaced():
    recording = make_recording()
    (graded,) = services.clips_replace_for_recording(
        recording=recording, clips=[clip_spec(1)]
    )
    services.clip_review(clip_id=graded.pk, decision="approve", user=None)
    graded.refresh_from_db()
    expert = services.expert_create(username="e1", password="e1-pass-123")
    services.vote_create(expert=expert, clip=graded, grade="B")

    services.clips_replace_for_recording(recording=recording, clips=[clip_spec(2)])

    graded.refresh_from_db()
    assert graded.is_active is False and graded.votes.count() == 1
    assert recording.clips.filter(is_active=True).count() == 1
    assert Clip.objects.count() == 2


def test_unreachable_task_queue_fails_the_recording_instead_of_a_server_error(
    admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    class BrokerDown:
        conf = SimpleNamespace(task_always_eager=False)

        def send_task(self, name, **_):
            raise ConnectionRefusedError("redis:6379")

    monkeypatch.setattr(enqueue, "current_app", BrokerDown())
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, rf.synthetic_mp4())
    assert response.status_code == 302
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.FAILED
    assert "could not be queued" in recording.error_message


def test_request_larger_than_the_limit_is_refused_before_reading_it(
    admin_client, sent, settings
):
    settings.MAX_UPLOAD_MB = 1
    response = admin_client.post(
        reverse("recording_upload"),
        {"patient_code": "P-1", "file": SimpleUploadedFile("big.mp4", b"0" * 1200000)},
    )
    assert response.status_code == 413
    assert "larger than the limit of 1 MB" in response.content.decode()
    assert not Recording.objects.exists()


def test_targets_sent_while_processing_are_refused_and_not_kept(admin_client, sent):
    recording = make_recording(mode=Recording.Mode.MANUAL)
    Recording.objects.filter(pk=recording.pk).update(width=320, height=240)
    services.recording_mark_processing(recording_id=recording.pk)
    _worker_on(recording)
    response = admin_client.post(
        reverse("recording_targets", args=[recording.pk]),
        {"targets": "[[10, 10]]"},
        follow=True,
    )
    assert "already processing" in response.content.decode()
    recording.refresh_from_db()
    assert recording.targets == [] and not sent


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "recording_detail"),
        ("get", "recording_status"),
        ("get", "recording_first_frame"),
        ("get", "recording_detections"),
        ("post", "recording_targets"),
        ("post", "recording_rerun"),
    ],
)
def test_expert_is_refused_every_recording_page(expert_client, sent, method, name):
    recording = make_recording()
    response = getattr(expert_client, method)(reverse(name, args=[recording.pk]))
    assert response.status_code == 403
    recording.refresh_from_db()
    assert recording.status == Recording.Status.UPLOADED and not sent


def test_the_detail_page_says_how_the_recording_was_processed(admin_client):
    recording = make_recording()
    url = reverse("recording_detail", args=[recording.pk])
    fresh = admin_client.get(url).content.decode()
    assert "Click the sperm you want followed" in fresh
    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.DONE)
    auto = admin_client.get(url).content.decode()
    assert "Processed automatically" in auto
    assert "Click the sperm you want followed" not in auto
    Recording.objects.filter(pk=recording.pk).update(
        mode=Recording.Mode.MANUAL, targets=[[10, 10], [20, 20]]
    )
    manual = admin_client.get(url).content.decode()
    assert "Processed with the 2 targets you chose" in manual


def _store_heads(recording, boxes):
    from django.core.files.storage import default_storage

    _, name = services.recording_preview_names(recording_id=recording.pk)
    if default_storage.exists(name):
        default_storage.delete(name)
    payload = {"width": 320, "height": 240, "detections": boxes}
    default_storage.save(name, ContentFile(json.dumps(payload).encode()))


def test_a_click_snaps_to_the_detected_head_and_background_is_refused(
    settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    recording = make_recording()
    Recording.objects.filter(pk=recording.pk).update(width=320, height=240)
    recording.refresh_from_db()
    head = {"x0": 100.0, "y0": 50.0, "x1": 110.0, "y1": 58.0, "score": 0.9}
    _store_heads(recording, [head])
    # 5 px right of the box: the head's centre is taken
    services.recording_targets_set(recording=recording, targets=[[115.0, 54.0]])
    recording.refresh_from_db()
    assert recording.targets == [[105.0, 54.0]]
    # empty background, 60 px away: refused with the reason, nothing stored
    with pytest.raises(services.RecordingRejected, match="No sperm head was detected"):
        services.recording_targets_set(recording=recording, targets=[[170.0, 54.0]])
    recording.refresh_from_db()
    assert recording.targets == [[105.0, 54.0]]
    # a frame where the detector found nothing takes the click as it is
    _store_heads(recording, [])
    services.recording_targets_set(recording=recording, targets=[[170.0, 54.0]])
    recording.refresh_from_db()
    assert recording.targets == [[170.0, 54.0]]
