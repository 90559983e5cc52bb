"""The grading page's aids in Chromium: the target marker, the phone layout,
focus after a grade, offline grading through the preloaded clips.

As in test_grading.py, no database call runs inside the Playwright block."""

from __future__ import annotations

import pytest

from annotation.models import Clip
from tests.browser.helpers import (
    TIMEOUT_MS,
    launch,
    log_in,
    screenshot,
    wait_until_playing,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            log_in(page, live_server.url, "browser-expert")
            wait_until_playing(page)
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
