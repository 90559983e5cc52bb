"""The dashboards in Chromium: every chart is drawn, nothing is fetched from another
host (plotly.js is ours) and the console stays free of errors."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from annotation import services
from tests.browser.helpers import TIMEOUT_MS, launch, screenshot
from tests.factories import ClipFactory, ExpertFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "dash-board-123"


@pytest.fixture
def dashboard_world(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    services.admin_create(username="dash-admin", password=PASSWORD)
    clips = ClipFactory.create_batch(8)
    experts = ExpertFactory.create_batch(5)
    rows = [
        (expert.pk, clip.pk, "ABCDE"[min(4, i % 5 + (e % 2))])
        for i, clip in enumerate(clips)
        for e, expert in enumerate(experts)
    ]
    services.votes_bulk_create_simulated(votes=rows, seconds_spent=6.0)
    services.panel_statistics_refresh()
    return experts


def _visit(page, url: str, n_charts: int) -> None:
    page.goto(url)
    page.wait_for_function(
        "(n) => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
        arg=n_charts,
        timeout=TIMEOUT_MS,
    )


def test_dashboards_draw_their_charts_from_our_own_host_only(
    live_server,
    dashboard_world,
    chromium_path,  # noqa: F811 (the fixture, imported above)
):
    from playwright.sync_api import sync_playwright

    own_host = urlparse(live_server.url).netloc
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            hosts, errors = set(), []
            page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
            page.on(
                "console",
                lambda m: errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=username]", "dash-admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/overview/?$|.*/$"))
            _visit(page, f"{live_server.url}/dashboards/", 5)
            assert page.locator("#alpha-value").inner_text().strip() != ""
            assert page.locator("#expert-table tbody tr").count() == 5
            _visit(page, f"{live_server.url}/dashboards/clips/", 8)
            assert page.locator("[data-clip]").count() == 8
        finally:
            browser.close()
    assert hosts == {own_host}, hosts
    assert not errors, errors


def test_model_dashboard_and_clip_review_draw_from_our_own_host_only(
    live_server,
    settings,
    chromium_path,  # noqa: F811
):
    from playwright.sync_api import sync_playwright

    from config.celery import app, ensure_broker_folders
    from registry import services as registry_services
    from registry.models import ModelVersion
    from tests.registry.conftest import make_voted_clips

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ensure_broker_folders()
    app.set_current()
    app.conf.task_always_eager = True
    try:
        clips, _ = make_voted_clips()
        registry_services.training_run_create(profile="tiny")
    finally:
        app.conf.task_always_eager = False
    services.panel_statistics_refresh(force=True)
    services.admin_create(username="model-admin", password=PASSWORD)
    version = ModelVersion.objects.get(is_active=True)
    own_host = urlparse(live_server.url).netloc
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            hosts, errors = set(), []
            page.on("request", lambda r: hosts.add(urlparse(r.url).netloc))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=username]", "model-admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/overview/?$|.*/$"))
            _visit(page, f"{live_server.url}/dashboards/models/{version.pk}/", 6)
            assert "experts" in page.locator("#model-sentence").inner_text()
            _visit(page, f"{live_server.url}/dashboards/clips/{clips[0].pk}/", 2)
        finally:
            browser.close()
    assert hosts == {own_host}, hosts
    assert not errors, errors


# Each chart's title (the figure's, and its axes'): the text, whether any element
# shows it, and whether that element lies whole inside the chart's own width
# (plotly clips what does not fit its drawing).
CHART_TITLES = """() => [...document.querySelectorAll('[data-figure]')].flatMap(
  (node) => {
    const source = document.getElementById(node.dataset.figure);
    const figure = JSON.parse(source.textContent);
    const box = node.getBoundingClientRect();
    const card = node.closest('section');
    const texts = [figure.layout.title && figure.layout.title.text,
        ...Object.keys(figure.layout).filter((k) => /^[xy]axis/.test(k))
            .map((k) => figure.layout[k].title && figure.layout[k].title.text)];
    const candidates = [...card.querySelectorAll(
        'h2, h3, .gtitle, .g-xtitle, .g-ytitle, .xtick text, .ytick text')];
    const check = (text, shown) => {
        if (!shown) return {text, shown: false};
        const r = shown.getBoundingClientRect();
        const across = r.left >= box.left - 1 && r.right <= box.right + 1;
        // A heading sits above the drawing; what plotly draws must fit in it.
        const down = !node.contains(shown)
            || (r.top >= box.top - 1 && r.bottom <= box.bottom + 1);
        return {text, shown: true, inside: across && down};
    };
    const bare = (text) => text.replace(/<br>/g, '').replace(/\\s+/g, '');
    const titles = texts.filter(Boolean).map((text) => check(
        text, candidates.find((el) => bare(el.textContent) === bare(text))));
    const ticks = [...node.querySelectorAll('.xtick text, .ytick text')]
        .map((el) => check(`tick ${el.textContent}`, el));
    return [...titles, ...ticks];
  })"""


def _log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", "dash-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/overview/?$|.*/$"))


@pytest.mark.parametrize("width", [1280, 820])
def test_chart_titles_are_shown_whole_within_their_panels(
    live_server,
    dashboard_world,
    chromium_path,  # noqa: F811
    width,
):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context(
                viewport={"width": width, "height": 900}
            ).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            _log_in(page, live_server.url)
            _visit(page, f"{live_server.url}/dashboards/", 5)
            titles = page.evaluate(CHART_TITLES)
            screenshot(page, f"dashboards-panel-{width}")
        finally:
            browser.close()
    assert sum(not t["text"].startswith("tick ") for t in titles) == 13, titles
    for title in titles:
        assert title["shown"] and title["inside"], title


def test_the_openapi_tile_opens_the_documentation_page_not_a_download(
    live_server,
    dashboard_world,
    chromium_path,  # noqa: F811
):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            downloads, refused = [], []
            page.on("download", lambda d: downloads.append(d.url))
            # Every page runs under the Content-Security-Policy: nothing refused.
            page.on(
                "console",
                lambda m: (
                    refused.append(m.text)
                    if "Content Security Policy" in m.text
                    else None
                ),
            )
            _log_in(page, live_server.url)
            page.goto(f"{live_server.url}/admin-home/")
            tiles = page.locator("a.tile")
            hrefs = tiles.evaluate_all("(links) => links.map((a) => a.href)")
            openapi = [
                i for i, t in enumerate(tiles.all_inner_texts()) if "OpenAPI" in t
            ]
            assert openapi, tiles.all_inner_texts()
            # Every tile opens a page; the OpenAPI one the documentation.
            for i, href in enumerate(hrefs):
                page.goto(f"{live_server.url}/admin-home/")
                page.locator("a.tile").nth(i).click()
                page.wait_for_load_state()
                page.wait_for_timeout(300)  # a download would have started by now
                assert not downloads, (href, downloads)
                assert page.url == href, (page.url, href)
                if i in openapi:
                    page.wait_for_selector("#swagger-ui .info .title")
                    assert "SpermGrade API" in page.inner_text("#swagger-ui .info")
        finally:
            browser.close()
    assert not refused, refused
