"""The grading page in a real browser: Playwright driving Debian's Chromium.

An expert logs in through the form, a clip plays, three clips are graded with the
keyboard (one send fails first and is retried on screen), the progress counter
moves, and an undo changes the stored vote.

Django's ORM refuses to run while Playwright's sync API holds an event loop in this
thread, so every database read and write happens before or after the browser block.
Set SPERMGRADE_SCREENSHOTS=<dir> to keep screenshots of the page.
"""

from __future__ import annotations

import re

import pytest

from annotation import services
from annotation.models import Vote, VoteHistory
from tests.browser.helpers import (
    PASSWORD,
    TIMEOUT_MS,
    check_player_controls,
    clip_on_screen,
    expect_progress,
    full_handle,
    grade_with_key,
    label_of,
    launch,
    screenshot,
    undo_and_regrade,
    wait_for_grading,
    wait_for_outbox_empty,
    wait_until_playing,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_expert_grades_three_clips_by_keyboard_and_undoes_the_last(
    live_server, grading_world, chromium_path
):
    expert, clips = grading_world
    total = len(clips)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            console_errors: list[str] = []
            page.on(
                "console",
                lambda m: console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))

            # Log in through the form; the login page sends the expert on to /grade/.
            page.goto(f"{live_server.url}/grade/")
            assert "/login/" in page.url
            screenshot(page, "01-login")
            page.fill("input[name=username]", "browser-expert")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/grade/$"))

            wait_until_playing(page)
            expect_progress(page, 0, total)
            assert page.locator("#clip-synthetic").is_visible()
            screenshot(page, "02-grade")
            check_player_controls(page)

            # The first send fails at the network level: it is shown and retried,
            # while the page moves on to the preloaded clip with the grade waiting.
            failures = []

            def fail_first_vote(route):
                if route.request.method == "POST" and not failures:
                    failures.append(route.request.post_data)
                    route.abort("connectionrefused")
                else:
                    route.continue_()

            page.route("**/api/votes/", fail_first_vote)
            first_clip = clip_on_screen(page)
            page.keyboard.press("b")
            # One atomic check while the retry is pending: error shown, the grade
            # waiting, the next clip on screen.
            page.wait_for_function(
                "(clip) => !document.getElementById('error').hidden"
                " && document.getElementById('error-text').textContent"
                ".includes('not saved yet')"
                " && document.getElementById('pending').textContent"
                ".startsWith('1 grade waits')"
                " && document.getElementById('clip-id').textContent !== clip",
                arg=label_of(first_clip),
            )
            screenshot(page, "03-retrying")
            expect_progress(page, 1, total)
            page.wait_for_selector("#error", state="hidden")
            page.wait_for_selector("#pending", state="hidden")
            page.unroute("**/api/votes/")
            assert len(failures) == 1

            second_clip = grade_with_key(page, "3", 1, total)
            wait_until_playing(page)
            third_clip = grade_with_key(page, "e", 2, total)
            wait_for_outbox_empty(page)  # the undo box names the last confirmed vote

            # Undo: U, then the new grade, changes the vote just given.
            page.wait_for_selector("#undo:not([hidden])")
            assert label_of(third_clip) in page.locator("#undo-text").inner_text()
            undo_and_regrade(page, third_clip, "a")
            expect_progress(page, 3, total)
            # Blind grading: the page never showed a panel distribution.
            assert page.locator("#reveal").is_hidden()
            screenshot(page, "04-after-undo")
            # The one refused request above is expected; nothing else may fail.
            unexpected = [e for e in console_errors if "CONNECTION_REFUSED" not in e]
            assert not unexpected, unexpected
        finally:
            browser.close()

    votes = dict(Vote.objects.filter(expert=expert).values_list("clip_id", "grade"))
    assert votes == {first_clip: "B", second_clip: "C", third_clip: "A"}
    change = VoteHistory.objects.get(clip_id=third_clip, action="change")
    assert (change.previous_grade, change.grade) == ("E", "A")


def test_vote_kept_in_the_browser_is_sent_after_a_reload(
    live_server, grading_world, chromium_path
):
    expert, clips = grading_world
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=username]", "browser-expert")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/grade/$"))
            wait_for_grading(page)
            # enabled buttons are not enough: a key before the first frame plays is
            # answered "still loading" and sends nothing (the flake under load)
            wait_until_playing(page)
            clip_id = clip_on_screen(page)

            # The server is unreachable for votes: the grade waits in localStorage.
            page.route("**/api/votes/", lambda route: route.abort("connectionrefused"))
            page.keyboard.press("d")
            page.wait_for_selector("#error:not([hidden])")
            stored = page.evaluate(
                "JSON.parse(localStorage.getItem('spermgrade.outbox.browser-expert'))"
            )
            assert [(item["clip"], item["grade"]) for item in stored] == [
                (full_handle(clip_id), "D")
            ]

            page.unroute("**/api/votes/")
            page.reload()
            expect_progress(page, 1, len(clips))
            page.wait_for_function(
                "() => localStorage.getItem('spermgrade.outbox.browser-expert')"
                " === '[]'"
            )
        finally:
            browser.close()

    assert list(Vote.objects.filter(expert=expert).values_list("clip_id", "grade")) == [
        (clip_id, "D")
    ]


def test_clip_just_graded_is_not_shown_again_when_the_queue_offers_it(
    live_server, grading_world, chromium_path
):
    # A request for the next clip that crosses a vote can come back with the clip
    # just graded (its lease renewed). The page must not show it a second time.
    expert, clips = grading_world
    from playwright.sync_api import sync_playwright

    seen: dict[int, dict] = {}
    graded: list[int] = []

    def stale_queue(route):
        response = route.fetch()
        body = response.json()
        for clip in body["clips"]:
            seen[clip["id"]] = clip
        if graded:
            body["clips"] = [seen[graded[-1]], *body["clips"]][:2]
        route.fulfill(response=response, json=body)

    def record_votes(route):
        response = route.fetch()
        if route.request.method == "POST" and response.status == 201:
            graded.append(response.json()["clip"])
        route.fulfill(response=response)

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.route(re.compile(r".*/api/clips/next/.*"), stale_queue)
            page.route("**/api/votes/", record_votes)
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=username]", "browser-expert")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/grade/$"))
            shown = [
                grade_with_key(page, key, i, len(clips)) for i, key in enumerate("abc")
            ]
            wait_for_outbox_empty(page)
            assert "already had your grade" not in page.locator("#status").inner_text()
        finally:
            browser.close()

    assert len(set(shown)) == 3
    assert Vote.objects.filter(expert=expert).count() == 3


def test_with_the_panel_revealed_the_vote_is_final_and_no_undo_is_offered(
    live_server, grading_world, chromium_path
):
    expert, clips = grading_world
    other = services.expert_create(username="panel-peer", password=PASSWORD)
    for clip in clips:
        services.vote_create(expert=other, clip=clip, grade="E")
    services.site_setting_update(reveal_panel_after_vote=True)
    total = len(clips)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{live_server.url}/grade/")
            page.fill("input[name=username]", "browser-expert")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/grade/$"))
            wait_until_playing(page)
            graded = grade_with_key(page, "b", 0, total)
            page.wait_for_selector("#reveal:not([hidden])")
            reveal = page.locator("#reveal").inner_text()
            assert f"clip {label_of(graded)}" in reveal and "final" in reveal
            # No undo box, and U does not open change mode.
            assert page.locator("#undo").is_hidden()
            page.keyboard.press("u")
            page.wait_for_timeout(300)
            assert page.locator("#undo").is_hidden()
            assert page.locator("#undo.is-changing").count() == 0
            screenshot(page, "05-revealed-final")
        finally:
            browser.close()
    grades = dict(Vote.objects.filter(expert=expert).values_list("clip_id", "grade"))
    assert grades == {graded: "B"}
