"""Clip review in Chromium: an operator approves one clip by click, rejects one by
keyboard with a reason, leaves one pending; only the approved one reaches an
expert's queue."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from annotation import selectors, services
from annotation.models import Clip, Recording
from tests.browser.helpers import (
    TIMEOUT_MS,
    launch,
    log_in,
    screenshot,
    stored_clip,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "review-pass-123"


@pytest.fixture
def review_world(settings, tmp_path, django_user_model):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REPEAT_SHARE = 0.0
    operator = django_user_model.objects.create_user("reviewer", password=PASSWORD)
    operator.groups.add(Group.objects.get_or_create(name="operators")[0])
    patient = services.patient_get_or_create(code="PAT-REVIEW")
    clips = [
        stored_clip(
            patient,
            seed=i,
            track=[[200.0 + t, 100.0] for t in range(16)],
            review="pending",
        )
        for i in range(3)
    ]
    return operator, clips


def test_operator_approves_by_click_and_rejects_by_keyboard_with_a_reason(
    live_server, review_world, chromium_path
):
    operator, (first, second, third) = review_world
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            log_in(
                page, live_server.url, "reviewer", PASSWORD, then="/recordings/review/"
            )
            assert page.locator(".review-card").count() == 3
            assert page.locator("#review-count").inner_text() == "3"
            # Every clip plays, with its ring drawn from the track.
            page.wait_for_function(
                "() => [...document.querySelectorAll('.review-card video')]"
                ".every((v) => v.readyState >= 2 && !v.paused)"
            )
            assert page.get_attribute(
                f"[data-clip='{first.pk}'] .review-card__ring circle", "r"
            ) not in (None, "0")
            screenshot(page, "review")

            page.click(f"[data-clip='{first.pk}'] button[data-decision='approve']")
            page.wait_for_selector(f"[data-clip='{first.pk}'].is-approved")
            # The focus moved on to the next pending clip: reject it by keyboard.
            page.wait_for_function(
                "(id) => document.activeElement.dataset.clip === id", arg=str(second.pk)
            )
            page.keyboard.press("r")
            reason = page.locator(f"[data-clip='{second.pk}'] input[name=reason]")
            reason.wait_for()
            assert reason.evaluate("el => el === document.activeElement")
            page.keyboard.type("two cells overlap")
            page.keyboard.press("Enter")
            page.wait_for_selector(f"[data-clip='{second.pk}'].is-rejected")
            assert (
                "two cells overlap"
                in page.locator(
                    f"[data-clip='{second.pk}'] .review-card__result"
                ).inner_text()
            )
            assert page.locator("#review-count").inner_text() == "1"
            page.wait_for_function(
                "(id) => document.activeElement.dataset.clip === id", arg=str(third.pk)
            )
        finally:
            browser.close()

    reviews = dict(Clip.objects.values_list("pk", "review"))
    assert reviews == {first.pk: "approved", second.pk: "rejected", third.pk: "pending"}
    rejected = Clip.objects.get(pk=second.pk)
    assert rejected.review_reason == "two cells overlap"
    assert rejected.reviewed_by_id == operator.pk
    expert = services.expert_create(username="after-review", password=PASSWORD)
    offered = [
        a.clip.pk for a in selectors.clip_next_for_expert(expert=expert, count=5)
    ]
    assert offered == [first.pk]


def test_recording_and_review_pages_fit_a_phone(
    live_server, review_world, chromium_path
):
    patient = services.patient_get_or_create(code="PAT-PHONE")
    Recording.objects.create(
        patient=patient,
        original_name="a-rather-long-recording-name-from-the-microscope.avi",
        status=Recording.Status.DONE,
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
            ).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            log_in(page, live_server.url, "reviewer", PASSWORD, then="/recordings/")
            for url in ("/recordings/", "/recordings/review/"):
                page.goto(live_server.url + url)
                assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
                for selector in ("table", ".site-header", ".review-card"):
                    for box in page.locator(selector).all():
                        rect = box.bounding_box()
                        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= 390, (
                            url,
                            selector,
                        )
        finally:
            browser.close()
