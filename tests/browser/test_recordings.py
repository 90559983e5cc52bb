"""The recording page in a real browser (Playwright driving Debian's Chromium).

The status box follows a run happening elsewhere (a thread stands in for the
worker) and the page reloads with the clips when it ends; in manual mode the first
frame is drawn with its detections and a click on a sperm becomes a target that is
followed. The ORM cannot run in the thread that holds Playwright's event loop, so
database work happens before or after the browser block, or in another thread.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.db import connection

from annotation import services
from annotation.models import Recording
from config.celery import app, ensure_broker_folders
from tests.servers.plugin import missing_service
from tests.workers import recording_files as rf
from workers import preprocess

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PASSWORD = "boss-pass-123"
TIMEOUT_MS = 30_000
# Preprocessing runs inside the live server while the page waits; give it room on a
# busy 2-core CI machine.
PROCESSING_TIMEOUT_MS = 180_000


@pytest.fixture
def world(settings, tmp_path):
    if not CHROMIUM.exists():
        missing_service(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    ensure_broker_folders()
    services.admin_create(username="boss", password=PASSWORD)
    yield services.patient_get_or_create(code="PAT-WEB", is_synthetic=True)
    app.conf.update(task_always_eager=before[0], task_eager_propagates=before[1])


def stored_recording(patient, **fields) -> Recording:
    data = rf.synthetic_mp4()
    recording = Recording(
        patient=patient,
        sha256=hashlib.sha256(data).hexdigest(),
        original_name="field.mp4",
        is_synthetic=True,
        um_per_px=0.5,
        max_clips=2,
        **fields,
    )
    recording.source.save("field.mp4", ContentFile(data), save=False)
    recording.save()
    return recording


def logged_in_page(playwright, live_server):
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS
        )
    except Exception as exc:  # a broken install is a missing service, not a bug
        missing_service(f"Chromium at {CHROMIUM} does not start: {exc}")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin-home/")
    return browser, page


def test_status_box_follows_the_worker_and_shows_the_clips_when_done(
    live_server, world
):
    from playwright.sync_api import sync_playwright

    recording = stored_recording(world, status=Recording.Status.QUEUED)

    def work() -> None:
        try:
            preprocess.recording_preprocess_run(recording_id=recording.pk)
        finally:
            connection.close()  # this thread's own connection

    worker = threading.Thread(target=work)

    with sync_playwright() as playwright:
        browser, page = logged_in_page(playwright, live_server)
        page.goto(f"{live_server.url}/recordings/{recording.pk}/")
        assert page.locator("[data-field=status_label]").inner_text() == "Queued"
        worker.start()
        page.wait_for_selector(".clip-card video", timeout=PROCESSING_TIMEOUT_MS)
        status = page.locator("[data-field=status_label]").inner_text()
        n_videos = page.locator(".clip-card video").count()
        browser.close()
    worker.join()

    assert status == "Done"
    assert n_videos == recording.clips.count() >= 1


def test_operator_clicks_a_sperm_on_the_first_frame_and_it_is_followed(
    live_server, world
):
    from playwright.sync_api import sync_playwright

    recording = stored_recording(world, mode=Recording.Mode.MANUAL)
    preprocess.recording_inspect_run(recording_id=recording.pk)
    truth = rf.synthetic_recording()
    cell = next(i for i, t in truth.tracks.items() if not np.isnan(t[:16]).any())
    x, y = truth.tracks[cell][0]

    with sync_playwright() as playwright:
        browser, page = logged_in_page(playwright, live_server)
        page.goto(f"{live_server.url}/recordings/{recording.pk}/")
        canvas = page.locator("#frame-canvas")
        canvas.wait_for(state="visible")
        page.wait_for_function(
            "() => document.getElementById('frame-canvas').width === 320"
        )
        box = canvas.bounding_box()
        page.mouse.click(
            box["x"] + x * box["width"] / 320, box["y"] + y * box["height"] / 240
        )
        chosen = page.locator("#targets-count").inner_text()
        page.click("#targets-submit")
        page.wait_for_selector(".clip-card video", timeout=PROCESSING_TIMEOUT_MS)
        browser.close()

    recording.refresh_from_db()
    assert chosen == "1"
    assert recording.status == Recording.Status.DONE, recording.error_message
    (target,) = recording.targets
    assert np.hypot(target[0] - x, target[1] - y) < 4  # the click, or its snap
    assert recording.clips.count() == 1


def test_real_recording_uploaded_in_the_browser_becomes_gradable_clips(
    live_server, world, shared_data, django_user_model
):
    from playwright.sync_api import sync_playwright

    from annotation import selectors

    source = shared_data / "svia_sperm_videos" / "videos" / "S_0001.mp4"
    if not source.exists():
        pytest.skip(f"{source} is absent")

    with sync_playwright() as playwright:
        browser, page = logged_in_page(playwright, live_server)
        page.goto(f"{live_server.url}/recordings/upload/")
        page.fill("input[name=patient_code]", "PAT-REAL")
        page.set_input_files("input[name=file]", str(source))
        page.fill("input[name=max_clips]", "3")
        page.click("form.form button[type=submit]")
        page.wait_for_selector(".clip-card video", timeout=PROCESSING_TIMEOUT_MS)
        n_videos = page.locator(".clip-card video").count()
        browser.close()

    recording = Recording.objects.get(original_name="S_0001.mp4")
    assert recording.status == Recording.Status.DONE, recording.error_message
    assert recording.patient.code == "PAT-REAL" and not recording.is_synthetic
    clips = list(recording.clips.all())
    assert n_videos == len(clips) >= 1
    for clip in clips:
        assert clip.array_file and clip.video_file and len(clip.track) == clip.n_frames
        assert {"vcl", "vsl", "lin"} <= set(clip.kinematics)
    expert = services.expert_create(username="grader", password="grader-pass-1")
    assert {clip.review for clip in clips} == {"pending"}
    assert not selectors.clip_next_for_expert(expert=expert, count=5)
    admin = django_user_model.objects.get(username="boss")
    for clip in clips:
        services.clip_review(clip_id=clip.pk, decision="approve", user=admin)
    offered = selectors.clip_next_for_expert(expert=expert, count=5)
    assert {a.clip.pk for a in offered} & {clip.pk for clip in clips}
