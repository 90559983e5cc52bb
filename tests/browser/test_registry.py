"""The model loop in Chromium: an admin starts a run on the Models page, watches it
finish on its page (live progress from the API, no reload by hand), and finds the
version active with a prediction for every clip. A real Celery worker process
trains it through the throwaway Redis."""

from __future__ import annotations

import re

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
