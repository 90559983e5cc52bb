"""/metrics under gunicorn's several processes, as docker-compose.yml runs web:
with PROMETHEUS_MULTIPROC_DIR set, one scrape adds up every process's counters,
so no request is lost whichever process served it or the scrape."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_ROOT
from tests.servers.processes import free_port

N_REQUESTS = 40


def _get(port: int, path: str, headers=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": "web:8000", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _login_total(body: bytes) -> float:
    """GET /login/ requests django-prometheus counted, over every process."""
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if (
                sample.name
                == "django_http_requests_total_by_view_transport_method_total"
                and sample.labels.get("view") == "login"
            ):
                total += sample.value
    return total


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_scrape_adds_up_every_gunicorn_process(tmp_path):
    s = connection.settings_dict
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
        "DEBUG": "false",
        "SECRET_KEY": "test-only-" + "x" * 50,
        "ALLOWED_HOSTS": "web",
        "CACHE_URL": "local",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "SPERMGRADE_VAR_DIR": str(tmp_path / "var"),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "3",
            "--threads",
            "1",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.5)
        status, body = _get(port, "/metrics")
        assert status == 200, body[:500]
        before = _login_total(body)
        # Batches of concurrent requests until a second process has served one:
        # /healthz answering means one process is up, not all three (a loaded
        # machine imports Django slowly), and a lone process takes every request.
        sent = 0
        deadline = time.monotonic() + 90
        with ThreadPoolExecutor(max_workers=6) as pool:
            while True:
                codes = list(
                    pool.map(lambda _: _get(port, "/login/")[0], range(N_REQUESTS))
                )
                assert codes == [200] * N_REQUESTS
                sent += N_REQUESTS
                served = len(list(multiproc.glob("counter_*.db")))
                if served >= 2 or time.monotonic() > deadline:
                    break
        # Several processes wrote their own files, and a scrape sums them all.
        status, body = _get(port, "/metrics")
        assert status == 200
        assert _login_total(body) - before == sent
        assert len(list(multiproc.glob("counter_*.db"))) >= 2
        assert b"spermgrade_queue_messages" in body or b"spermgrade_broker_up" in body
        # Through a proxy, never.
        assert _get(port, "/metrics", {"X-Forwarded-For": "203.0.113.9"})[0] == 404
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
