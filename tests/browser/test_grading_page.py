"""The grading page's aids in Chromium: the target marker, the phone layout,
focus after a grade, offline grading through the preloaded clips.

As in test_grading.py, no database call runs inside the Playwright block."""

from __future__ import annotations

import pytest

from annotation.models import Clip, Vote
from tests.browser.helpers import (
    TIMEOUT_MS,
    clip_on_screen,
    expect_progress,
    label_of,
    launch,
    log_in,
    screenshot,
    undo_and_regrade,
    wait_for_grading,
    wait_for_outbox_empty,
    wait_until_playing,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_grading_page(browser, base_url: str):
    """A desktop page, the browser expert logged in, the first clip playing."""
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, base_url, "browser-expert")
    wait_until_playing(page)
    return page


RING = "#marker circle"
# The ring's frame, its centre in clip pixels, and where that centre falls on the
# video's picture, converted back to clip pixels (96 px clips).
RING_STATE = """() => {
  const svg = document.getElementById('marker');
  const c = svg.querySelector('circle');
  const v = document.getElementById('video').getBoundingClientRect();
  const r = c.getBoundingClientRect();
  return {frame: Number(svg.dataset.frame),
          cx: Number(c.getAttribute('cx')), cy: Number(c.getAttribute('cy')),
          sx: (r.left + r.width / 2 - v.left) / v.width * 96,
          sy: (r.top + r.height / 2 - v.top) / v.height * 96}; }"""


def _fractional_track(n: int) -> list[list[float]]:
    """A track in recording pixels whose sub-pixel part changes every frame: the
    crop is centred on the rounded point, so the head sits at 48 + the fraction
    in a 96 px clip (x: -0.4 … +0.4 in steps of 0.2, y: -0.3, 0, +0.3)."""
    return [
        [300.0 + ((t % 5) - 2) * 0.2, 200.0 + ((t % 3) - 1) * 0.3] for t in range(n)
    ]


def test_the_marker_rings_the_tracked_sperm_in_every_frame_and_m_toggles_it(
    live_server, grading_world, chromium_path
):
    expert, clips = grading_world
    Clip.objects.filter(pk__in=[c.pk for c in clips]).update(
        track=_fractional_track(16)
    )
    # By hand: frame t's ring centre in clip pixels.
    expected = {
        t: (48 + ((t % 5) - 2) * 0.2, 48 + ((t % 3) - 1) * 0.3) for t in range(16)
    }
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = open_grading_page(browser, live_server.url)
            page.wait_for_selector(RING)
            page.keyboard.press(" ")
            page.wait_for_function("() => document.getElementById('video').paused")
            seen = {}
            for _ in range(16):
                page.keyboard.press(".")
                page.wait_for_function(
                    "() => { const v = document.getElementById('video');"
                    " const f = Math.floor(v.currentTime * 15 + 1e-3);"
                    " return document.getElementById('marker').dataset.frame == f; }"
                )
                got = page.evaluate(RING_STATE)
                seen[got["frame"]] = got
            assert sorted(seen) == list(range(16))
            for t, (x, y) in expected.items():
                assert seen[t]["cx"] == pytest.approx(x, abs=1e-6)
                assert seen[t]["cy"] == pytest.approx(y, abs=1e-6)
                # On screen the ring's centre lies on that clip pixel of the video.
                assert seen[t]["sx"] == pytest.approx(x, abs=0.6)
                assert seen[t]["sy"] == pytest.approx(y, abs=0.6)
            # Zoomed in, the ring still sits on the same clip pixel.
            page.keyboard.press("+")
            page.keyboard.press("+")
            page.wait_for_function(
                "() => document.getElementById('zoom-value').textContent === '2×'"
            )
            t = int(page.evaluate("document.getElementById('marker').dataset.frame"))
            at = page.evaluate(RING_STATE)
            assert at["frame"] == t
            assert [at["sx"], at["sy"]] == pytest.approx(list(expected[t]), abs=0.6)
            # Zoomed pixels are the clip's own (nearest neighbour), not a blur.
            rendering = page.evaluate(
                "getComputedStyle(document.getElementById('video')).imageRendering"
            )
            assert rendering == "pixelated"
            screenshot(page, "marker")

            # M hides it, the button says so, and the choice survives a reload.
            page.keyboard.press("m")
            page.wait_for_selector("#marker", state="hidden")
            assert page.get_attribute("#btn-marker", "aria-pressed") == "false"
            page.reload()
            wait_until_playing(page)
            page.wait_for_timeout(300)
            assert page.locator("#marker").is_hidden()
            page.click("#btn-marker")
            page.wait_for_selector(RING)
            assert page.get_attribute("#btn-marker", "aria-pressed") == "true"
        finally:
            browser.close()


def _playing_new_clip(page, old_label: str) -> None:
    page.wait_for_function(
        "(old) => document.getElementById('clip-id').textContent !== old",
        arg=old_label,
    )
    wait_for_grading(page)


def test_offline_grades_go_on_through_the_preloaded_clips_and_land_once_in_order(
    live_server, grading_world, chromium_path
):
    expert, clips = grading_world
    from playwright.sync_api import sync_playwright

    order = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            log_in(page, live_server.url, "browser-expert")
            wait_until_playing(page)
            page.wait_for_load_state("networkidle")  # the two clips ahead are in
            context.set_offline(True)
            for n, key in enumerate(["a", "c", "e"], start=1):
                wait_for_grading(page)
                order.append(clip_on_screen(page))
                page.keyboard.press(key)
                page.wait_for_function(
                    "(text) => document.getElementById('pending').textContent"
                    ".startsWith(text)",
                    arg=f"{n} grade{'s' if n > 1 else ''} wait",
                )
                if n < 3:
                    _playing_new_clip(page, label_of(order[-1]))
            # The counter already counts them; nothing has reached the server.
            expect_progress(page, 3, len(clips))
            assert "offline" in page.locator("#pending").inner_text()
            screenshot(page, "offline-queue")
            context.set_offline(False)
            page.wait_for_selector("#pending", state="hidden", timeout=60_000)
            expect_progress(page, 3, len(clips))
            outbox = page.evaluate(
                "localStorage.getItem('spermgrade.outbox.browser-expert')"
            )
            assert outbox == "[]"
        finally:
            browser.close()

    votes = list(Vote.objects.filter(expert=expert).order_by("created_at", "id"))
    assert [v.clip_id for v in votes] == order  # each once, in the order graded
    assert [v.grade for v in votes] == ["A", "C", "E"]


def test_phone_layout_keeps_clip_and_five_grades_on_one_screen(
    live_server, grading_world, chromium_path
):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
            )
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            log_in(page, live_server.url, "browser-expert")
            wait_until_playing(page)
            wait_for_grading(page)

            def inside(selector: str) -> bool:
                box = page.locator(selector).bounding_box()
                return (
                    box is not None
                    and box["x"] >= 0
                    and box["y"] >= 0
                    and box["x"] + box["width"] <= 390
                    and box["y"] + box["height"] <= 844
                )

            assert inside("#stage")
            for grade in "ABCDE":
                assert inside(f".grade-btn[data-grade='{grade}']"), grade
            assert inside(".site-header") and inside("form[action$='logout/'] button")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            first = clip_on_screen(page)
            page.tap(".grade-btn[data-grade='B']")
            _playing_new_clip(page, label_of(first))
            page.wait_for_selector("#undo:not([hidden])")
            assert inside("#status") and inside("#undo")
            # No sticky highlight: the tapped button looks like its neighbours.
            looks = page.evaluate(
                "[...document.querySelectorAll('.grade-btn')].map((b) => {"
                " const s = getComputedStyle(b);"
                " return s.backgroundColor + s.borderColor; })"
            )
            assert len(set(looks)) == 1, looks
            screenshot(page, "grade-phone")
        finally:
            browser.close()


def test_focus_stays_on_the_grade_buttons_after_enter(
    live_server, grading_world, chromium_path
):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = open_grading_page(browser, live_server.url)
            wait_for_grading(page)
            first = clip_on_screen(page)
            page.focus(".grade-btn[data-grade='C']")
            page.keyboard.press("Enter")
            expect_progress(page, 1, 4)
            _playing_new_clip(page, label_of(first))
            focused = page.evaluate(
                "document.activeElement.closest('#grade-buttons') !== null"
                " && document.activeElement.dataset.grade"
            )
            assert focused == "C"
            # Enter again grades the next clip: the focus is still useful.
            second = clip_on_screen(page)
            page.keyboard.press("Enter")
            expect_progress(page, 2, 4)
            _playing_new_clip(page, label_of(second))
            assert page.evaluate("document.activeElement.dataset.grade") == "C"
            wait_for_outbox_empty(page)
        finally:
            browser.close()
    assert sorted(Vote.objects.values_list("grade", flat=True)) == ["C", "C"]


def test_the_undo_box_survives_a_reload_while_the_window_is_open(
    live_server, grading_world, chromium_path
):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = open_grading_page(browser, live_server.url)
            wait_for_grading(page)
            graded = clip_on_screen(page)
            page.keyboard.press("d")
            page.wait_for_selector("#undo:not([hidden])")
            page.reload()
            page.wait_for_selector("#undo:not([hidden])")
            assert label_of(graded) in page.locator("#undo-text").inner_text()
            undo_and_regrade(page, graded, "b")
        finally:
            browser.close()
    assert dict(Vote.objects.values_list("clip_id", "grade")) == {graded: "B"}


def test_a_closed_tab_hands_its_clips_back_and_the_finish_screen_names_other_tabs(
    live_server, grading_world, chromium_path
):
    expert, clips = grading_world
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            first = context.new_page()
            first.set_default_timeout(TIMEOUT_MS)
            log_in(first, live_server.url, "browser-expert")
            wait_until_playing(first)  # this tab holds 3 of the 4 clips
            second = context.new_page()
            second.set_default_timeout(TIMEOUT_MS)
            second.goto(f"{live_server.url}/grade/")
            wait_for_grading(second)
            only = clip_on_screen(second)
            second.keyboard.press("a")
            second.wait_for_selector("#done:not([hidden])")
            assert (
                "3 clips are open in your other tabs"
                in second.locator("#done-elsewhere").inner_text()
            )
            first.close()  # pagehide: the beacon hands its 3 clips back
            # The beacon is asynchronous: ask again until its clips are here.
            for _ in range(20):
                second.wait_for_timeout(500)
                second.click("#btn-check-again")
                second.wait_for_function(
                    "() => document.getElementById('done').hidden"
                    " || document.getElementById('status').textContent"
                    " === 'Still nothing to grade.'"
                )
                if second.locator("#done").is_hidden():
                    break
            wait_for_grading(second)
            assert clip_on_screen(second) != only
        finally:
            browser.close()


def test_a_double_click_grades_one_clip_only(live_server, grading_world, chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = open_grading_page(browser, live_server.url)
            page.wait_for_load_state("networkidle")  # the next clip is ready at once
            wait_for_grading(page)
            page.dblclick(".grade-btn[data-grade='A']")
            expect_progress(page, 1, 4)
            wait_for_outbox_empty(page)
            page.wait_for_timeout(500)
            expect_progress(page, 1, 4)
        finally:
            browser.close()
    assert Vote.objects.count() == 1


def test_u_while_a_grade_is_saving_changes_that_grade_never_the_next_clip(
    live_server, grading_world, chromium_path
):
    """700 ms of latency on the vote: U during "Saving…", then B. The B is the
    new grade of the clip just graded (the status names it), never a grade of the
    clip now on screen, which the expert has not watched."""
    from playwright.sync_api import sync_playwright

    held = []

    def hold(route):  # latency: the vote waits until the test lets it through
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = open_grading_page(browser, live_server.url)
            page.wait_for_load_state("networkidle")  # the next clip is ready at once
            wait_for_grading(page)
            page.route("**/api/votes/", hold)
            graded = clip_on_screen(page)
            page.keyboard.press("c")
            page.wait_for_function(
                "(text) => document.getElementById('status').textContent"
                ".startsWith(text)",
                arg=f"Saving grade C for clip {label_of(graded)}",
            )
            _playing_new_clip(page, label_of(graded))
            on_screen = clip_on_screen(page)
            assert on_screen != graded and len(held) == 1
            page.keyboard.press("u")
            page.wait_for_selector("#undo.is-changing")
            assert label_of(graded) in page.locator("#undo-text").inner_text()
            # The clip on screen cannot be graded while the change is chosen.
            assert page.locator(".grade-btn[aria-disabled='true']").count() == 5
            page.keyboard.press("b")
            status = page.locator("#status").inner_text()
            assert f"Clip {label_of(graded)} will be changed to B" in status
            assert label_of(on_screen) not in status
            page.wait_for_timeout(700)
            held.pop().continue_()
            page.wait_for_function(
                "(text) => document.getElementById('status').textContent"
                ".includes(text)",
                arg=f"clip {label_of(graded)} is now graded B",
            )
            wait_for_outbox_empty(page)
            expect_progress(page, 1, 4)
            assert clip_on_screen(page) == on_screen
        finally:
            browser.close()
    assert dict(Vote.objects.values_list("clip_id", "grade")) == {graded: "B"}
