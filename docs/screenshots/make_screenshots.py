"""Screenshots of the grading page (desktop and phone) and of the clip review
page, taken from the synthetic demo data in Debian's Chromium.

    .venv/bin/python docs/screenshots/make_screenshots.py

Builds a throw-away SQLite demo in a temporary folder (migrate, demo_data),
marks six demo clips "pending review" so the review page has something to show,
serves it with Django's development server and writes the PNGs next to this
file. Nothing of the regular demo database is touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="spermgrade-shots-"))
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "MEDIA_ROOT": str(work / "media"),
        "REPEAT_SHARE": "0",
    }
    _manage(env, "migrate", "--noinput", "--verbosity", "0")
    _manage(env, "demo_data")
    _manage(
        env,
        "shell",
        "-c",
        "from annotation.models import Clip; "
        "ids = list(Clip.objects.order_by('-id').values_list('id', flat=True)[:6]); "
        "Clip.objects.filter(id__in=ids).update(review='pending')",
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        _shoot(base)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _log_in(page, base: str, user: str, password: str, then: str) -> None:
    page.goto(f"{base}/login/?next={then}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}")


def _playing(page) -> None:
    page.wait_for_function(
        "() => { const v = document.getElementById('video');"
        " return v.readyState >= 2 && !v.paused && v.currentTime > 0.3; }",
        timeout=30_000,
    )


def _shoot(base: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            desktop = browser.new_page(viewport={"width": 1360, "height": 900})
            _log_in(desktop, base, "expert", "grade-sperm-demo", "/grade/")
            _playing(desktop)
            desktop.keyboard.press("b")  # one grade, so the undo box shows
            desktop.wait_for_selector("#undo:not([hidden])", timeout=30_000)
            _playing(desktop)
            desktop.screenshot(path=str(HERE / "grade-desktop.png"))

            phone = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
            ).new_page()
            _log_in(phone, base, "expert", "grade-sperm-demo", "/grade/")
            _playing(phone)
            phone.tap(".grade-btn[data-grade='C']")
            phone.wait_for_selector("#undo:not([hidden])", timeout=30_000)
            _playing(phone)
            phone.screenshot(path=str(HERE / "grade-phone.png"))

            admin = browser.new_page(viewport={"width": 1360, "height": 900})
            _log_in(admin, base, "admin", "admin-demo-pass", "/recordings/review/")
            admin.wait_for_function(
                "() => [...document.querySelectorAll('.review-card video')]"
                ".every((v) => v.readyState >= 2 && v.currentTime > 0.3)",
                timeout=30_000,
            )
            admin.click(".review-card button[data-decision='approve']")
            admin.wait_for_selector(".review-card.is-approved")
            admin.keyboard.press("r")
            admin.keyboard.type("two cells overlap")
            admin.screenshot(path=str(HERE / "review.png"))
        finally:
            browser.close()


if __name__ == "__main__":
    main()
