"""The model loop in Chromium: an admin starts a run on the Models page, watches it
finish on its page (live progress from the API, no reload by hand), and finds the
version active with a prediction for every clip. A real Celery worker process
trains it through the throwaway Redis."""

from __future__ import annotations

import re
import time

import pytest

from annotation import services as annotation_services
from registry.models import ModelVersion, Prediction, TrainingRun
from tests.browser.helpers import TIMEOUT_MS, launch
from tests.registry.conftest import _broker_folders, make_voted_clips  # noqa: F401
from tests.registry.test_loop_worker import workers  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
PASSWORD = "model-loop-123"


def test_an_admin_runs_the_whole_loop_in_the_browser(
    live_server,
    settings,
    workers,  # noqa: F811 (the fixture, imported above)
    chromium_path,  # noqa: F811
):
    from playwright.sync_api import sync_playwright

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    clips, _ = make_voted_clips()
    annotation_services.admin_create(username="loop-admin", password=PASSWORD)
    workers.start("w1")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=username]", "loop-admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/overview/?$|.*/$"))
            page.goto(f"{live_server.url}/registry/")
            page.select_option("#profile", "tiny")
            page.fill("#epochs", "3")
            page.click("#run-start-form button[type=submit]")
            page.wait_for_url(re.compile(r".*/registry/runs/\d+/$"))
            run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
            # The page polls the API and reloads itself when the run ends.
            page.wait_for_selector("text=registered v1", timeout=240_000)
            assert page.locator("#run-status").inner_text().strip() == "Done"
            assert page.locator("#folds-table tbody tr").count() == 3
            page.goto(f"{live_server.url}/registry/")
            assert "v1" in page.locator("#active-title + p").inner_text()
        finally:
            browser.close()
    # The ORM is not usable while Playwright's event loop runs: checked here.
    run = TrainingRun.objects.get(pk=run_id)
    assert run.config["optim"]["epochs"] == 3
    version = ModelVersion.objects.get()
    assert version.is_active and version.run_id == run.pk
    assert Prediction.objects.filter(version=version).count() == len(clips)
    assert not errors, errors


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/overview/?$|.*/$"))


@pytest.fixture
def two_versions(settings):
    """v1 active (promoted automatically), v2 registered and held for an admin."""
    from registry import services as registry_services
    from tests.registry.test_versions import _version

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    annotation_services.admin_create(username="loop-admin", password=PASSWORD)
    v1, v2 = _version(1, 0.05, 0.01), _version(2, 0.049, 0.01)
    registry_services.version_auto_decide(version=v1)
    registry_services.version_auto_decide(version=v2)
    return v1, v2


def test_promote_and_roll_back_ask_first_and_then_say_what_happened(
    live_server,
    two_versions,
    chromium_path,  # noqa: F811
):
    from playwright.sync_api import sync_playwright

    dialogs, answers, posts = [], [], []

    def answer(dialog):
        dialogs.append(dialog.message)
        dialog.accept() if answers.pop(0) else dialog.dismiss()

    def slow(route):  # network latency on every promote and rollback
        posts.append(route.request.url)
        time.sleep(1.0)
        route.continue_()

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", answer)
            _log_in(page, live_server.url, "loop-admin")
            page.goto(f"{live_server.url}/registry/")
            page.route(re.compile(r".*/registry/versions/.*/$"), slow)
            active = page.locator("#active-title + p")
            assert "v1" in active.inner_text()

            # Said no: nothing is sent, v1 stays active.
            answers.append(False)
            page.click("#promote-v2")
            page.wait_for_timeout(300)
            assert len(dialogs) == 1 and posts == []
            assert "Promote v2" in dialogs[0] and "replaces v1" in dialogs[0]
            assert not page.locator(".message").count()

            # Said yes, with an impatient double click on a slow server: asked
            # once, sent once, and the page says what happened.
            answers.extend([True, True])
            page.dblclick("#promote-v2", no_wait_after=True)
            page.wait_for_selector(".message--success")
            assert "Promoted: v2 is the active version now (was v1)" in (
                page.locator(".message--success").inner_text()
            )
            assert len(dialogs) == 2 and len(posts) == 1, (dialogs, posts)
            assert "v2" in active.inner_text()

            # Roll back: the button and the question name the version it restores.
            assert page.locator("#rollback").inner_text() == "Roll back to v1"
            answers[:] = [True]
            page.click("#rollback", no_wait_after=True)
            page.wait_for_selector("text=Rolled back: v1 is the active version again.")
            assert "from v2 to v1" in dialogs[2]
            assert "v1" in active.inner_text()
            # Rollback is history, not a toggle: v1 was the first active version.
            assert page.locator("#rollback").count() == 0
            assert "no earlier one to roll back to" in page.inner_text("main")
        finally:
            browser.close()
    assert len(posts) == 2, posts
    assert not errors, errors
    assert ModelVersion.objects.get(is_active=True).number == 1


def test_the_run_page_keeps_its_status_words_while_it_polls_slowly(
    live_server,
    settings,
    chromium_path,  # noqa: F811
):
    from playwright.sync_api import sync_playwright

    from registry import services as registry_services

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    annotation_services.admin_create(username="loop-admin", password=PASSWORD)
    # No worker: the run stays running with its folds queued.
    run = registry_services.training_run_create(profile="tiny")
    registry_services.run_mark_running(run_id=run.pk, snapshot=None, n_folds=2)
    polls = []

    def slow(route):  # network latency on every poll of the run API
        time.sleep(0.6)
        polls.append(route.request.url)
        route.continue_()

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            _log_in(page, live_server.url, "loop-admin")
            page.route(re.compile(r".*/api/registry/runs/\d+/$"), slow)
            page.goto(f"{live_server.url}/registry/runs/{run.pk}/")
            assert page.locator("#run-status").inner_text() == "Running"
            page.wait_for_function(
                "() => document.getElementById('run-updated').textContent !== ''"
            )
            assert polls
            assert page.locator("#run-status").inner_text() == "Running"
            cells = page.locator("#folds-table .js-status").all_inner_texts()
            assert cells == ["Queued", "Queued", "Queued"], cells
        finally:
            browser.close()
    assert not errors, errors
