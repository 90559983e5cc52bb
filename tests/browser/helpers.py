"""Shared by the browser tests: launching Debian's Chromium, logging in, and
reading the grading page.

Django's ORM refuses to run while Playwright's sync API holds an event loop in
the test's thread, so these helpers never touch the database, except
``stored_clip``, which fixtures (conftest.py) call before the browser block.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from annotation import services
from tests.servers.plugin import missing_service
from video.io import encode_mp4

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
PASSWORD = "grade-me-123"
TIMEOUT_MS = 20_000


def moving_cell_frames(*, n_frames: int = 16, size: int = 96, seed: int = 0):
    """A bright blob crossing a noisy grey field: enough to see playback move."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    frames = []
    for t in range(n_frames):
        cx, cy = 20 + 3 * t, size / 2 + 6 * np.sin(t / 2)
        blob = 150 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30.0)
        noise = rng.normal(0, 6, (size, size))
        gray = np.clip(90 + blob + noise, 0, 255).astype(np.uint8)
        frames.append(np.repeat(gray[..., None], 3, axis=2))
    return np.stack(frames)


def launch(playwright):
    try:
        return playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS
        )
    except Exception as exc:  # a broken install is a missing service, not a bug
        missing_service(f"Chromium at {CHROMIUM} does not start: {exc}")


def screenshot(page, name: str) -> None:
    folder = os.environ.get("SPERMGRADE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


# The browser expert's handles by clip id, filled by grading_world: the page
# names clips by handle, and no database call may run inside Playwright's loop.
_HANDLES: dict[int, str] = {}


def full_handle(clip_id: int) -> str:
    """The handle the browser expert knows a clip by."""
    return _HANDLES[clip_id]


def label_of(clip_id: int) -> str:
    """How the page names a clip: the start of its handle, never its id."""
    return full_handle(clip_id)[:8]


def clip_on_screen(page) -> int:
    """The id of the clip on screen, found from the label the page shows."""
    text = page.locator("#clip-id").inner_text()
    matches = [pk for pk in _HANDLES if label_of(pk) == text]
    assert len(matches) == 1, text
    return matches[0]


def log_in(
    page, base_url: str, username: str, password: str = PASSWORD, *, then="/grade/"
):
    """Log in through the form, landing on ``then``."""
    page.goto(f"{base_url}/login/?next={then}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(".*" + re.escape(then) + "$"))


def wait_until_playing(page) -> None:
    page.wait_for_function(
        "() => { const v = document.getElementById('video');"
        " return v.readyState >= 2 && !v.paused; }",
        timeout=TIMEOUT_MS,
    )
    start = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_function(
        f"() => document.getElementById('video').currentTime !== {start}",
        timeout=TIMEOUT_MS,
    )


PAGE_STATE = """() => ({
    clip: document.getElementById('clip-id').textContent,
    progress: document.getElementById('progress-text').textContent,
    status: document.getElementById('status').textContent,
    error: document.getElementById('error').hidden ? ''
        : document.getElementById('error-text').textContent,
    buttons_disabled: document.querySelector('.grade-btn').ariaDisabled,
    outbox: localStorage.getItem('spermgrade.outbox.browser-expert'),
    overlay: document.getElementById('stage-overlay').hidden ? ''
        : document.getElementById('stage-overlay').textContent,
    video: ['readyState', 'networkState', 'paused', 'currentTime'].map(
        (k) => document.getElementById('video')[k]),
})"""


def wait_for_grading(page) -> None:
    """Wait until the grade buttons accept a grade; say why not on a timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector(".grade-btn[aria-disabled='false']", timeout=TIMEOUT_MS)
    except PlaywrightTimeout:
        state = page.evaluate(PAGE_STATE)
        raise AssertionError(f"grade buttons stayed disabled: {state}") from None


def expect_progress(page, graded: int, total: int) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "(text) => document.getElementById('progress-text').textContent === text",
            arg=f"{graded} graded of {total}",
            timeout=TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        state = page.evaluate(PAGE_STATE)
        raise AssertionError(
            f"progress never read {graded} of {total}: {state}"
        ) from None


def grade_with_key(page, key: str, graded_before: int, total: int) -> int:
    """Press a grade key on the clip on screen; return that clip's id."""
    wait_for_grading(page)
    clip_id = clip_on_screen(page)
    page.keyboard.press(key)
    expect_progress(page, graded_before + 1, total)
    page.wait_for_function(
        "(old) => document.getElementById('clip-id').textContent !== old",
        arg=label_of(clip_id),
        timeout=TIMEOUT_MS,
    )
    return clip_id


def undo_and_regrade(page, clip_id: int, key: str) -> None:
    """U on the undo box naming ``clip_id``, then ``key``: the status must say
    the clip is now graded ``key.upper()``."""
    page.keyboard.press("u")
    page.wait_for_selector("#undo.is-changing")
    page.keyboard.press(key)
    page.wait_for_function(
        "(text) => document.getElementById('status').textContent.includes(text)",
        arg=f"clip {label_of(clip_id)} is now graded {key.upper()}",
    )


def video_prop(page, name: str):
    return page.evaluate(f"document.getElementById('video').{name}")


def settled_frame(page) -> int:
    """The frame number on screen once it matches the video's (seek target) time."""
    page.wait_for_function(
        "() => { const v = document.getElementById('video');"
        " const f = Math.floor(v.currentTime * 15 + 1e-3) + 1;"
        " return document.getElementById('frame-counter').textContent"
        " === `Frame ${f} / 16`; }"
    )
    text = page.locator("#frame-counter").inner_text()
    return int(re.fullmatch(r"Frame (\d+) / 16", text).group(1))


def check_player_controls(page) -> None:
    """Space pauses, `,`/`.` step frames, `[`/`]` set the speed, `+`/`0` zoom."""
    page.keyboard.press(" ")
    page.wait_for_function("() => document.getElementById('video').paused")
    page.keyboard.press(".")
    first = settled_frame(page)
    page.keyboard.press(".")
    assert settled_frame(page) == first % 16 + 1
    page.keyboard.press(",")
    assert settled_frame(page) == first
    assert video_prop(page, "paused")

    page.keyboard.press("]")
    assert video_prop(page, "playbackRate") == 1.5
    for _ in range(4):
        page.keyboard.press("[")
    assert video_prop(page, "playbackRate") == 0.25
    page.click("#speed-buttons button[data-speed='1']")
    assert video_prop(page, "playbackRate") == 1

    page.keyboard.press("+")
    assert page.locator("#zoom-value").inner_text() == "1.5×"
    page.keyboard.press("0")
    assert page.locator("#zoom-value").inner_text() == "1×"

    # Space with the play button focused toggles once, not twice.
    page.focus("#btn-play")
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.getElementById('video').paused")
    page.wait_for_timeout(200)
    assert not video_prop(page, "paused")


def wait_for_outbox_empty(page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until every grade the page queued has been answered by the server
    (the page moves on before that)."""
    page.wait_for_function(
        "() => JSON.parse(localStorage.getItem('spermgrade.outbox.browser-expert')"
        " || '[]').length === 0",
        timeout=timeout_ms,
    )


def stored_clip(patient, *, seed: int, track: list, **fields):
    """A 16-frame clip of ``moving_cell_frames`` at 15 fps, stored with its mp4."""
    frames = moving_cell_frames(seed=seed)
    return services.clip_create(
        patient=patient,
        frames=frames,
        fps=15.0,
        track=track,
        speed=10.0,
        speed_unit="px/s",
        kinematics={},
        video_bytes=encode_mp4(frames, fps=15.0),
        **fields,
    )
