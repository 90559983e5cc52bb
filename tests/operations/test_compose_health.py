"""docker compose's health checks, read from docker-compose.yml and run here as
docker would run them: web's against a live server, the workers' and beat's
(``celery inspect ping`` of their own node) against a real worker and a real
beat on a real Redis. And the proxy routes only to a web that answers."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.db import connection

from tests.conftest import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _command(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def _words(service: dict) -> list[str]:
    return " ".join(_command(service)).split()


def _check(service: dict) -> list[str]:
    """The health check as docker runs it: compose's $$ is a literal $."""
    test = [part.replace("$$", "$") for part in service["healthcheck"]["test"]]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", " ".join(test[1:])]
    assert test[0] == "CMD", test
    return test[1:]


def _celery_services() -> dict[str, dict]:
    return {
        name: s
        for name, s in SERVICES.items()
        if s.get("command") and {"worker", "beat"} & set(_words(s))
    }


def test_web_workers_and_beat_have_health_checks_and_start_after_a_ready_web():
    assert "/readyz" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    celery = _celery_services()
    assert {"worker-cpu", "worker-gpu-0", "beat"} <= set(celery)
    for name, service in celery.items():
        words = _words(service)
        check = " ".join(_check(service))
        if "beat" in words:
            assert "--enable-remote-control" in words, name
            node = "celerybeat@%h"
        else:
            node = words[words.index("--hostname") + 1]
        # The ping names this service's own node ($HOSTNAME is docker's %h).
        assert f"inspect ping -d {node.replace('%h', '$HOSTNAME')} " in check, name
        assert service["depends_on"]["web"]["condition"] == "service_healthy", name


def test_the_proxy_routes_only_to_a_web_that_answers_healthz():
    caddyfile = (REPO_ROOT / "deploy" / "Caddyfile").read_text()
    block = re.search(r"reverse_proxy web:8000 \{(.*?)\n\t\}", caddyfile, re.S)
    assert block, "no reverse_proxy web:8000 block"
    assert re.search(r"^\s*health_uri /healthz$", block.group(1), re.M)
    assert re.search(r"^\s*health_status 200$", block.group(1), re.M)


@pytest.mark.django_db(transaction=True)
def test_the_web_health_check_passes_on_a_ready_server_and_fails_otherwise(
    live_server, settings, tmp_path
):
    from config.celery import ensure_broker_folders

    ensure_broker_folders()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    check = [
        part.replace("http://127.0.0.1:8000", live_server.url)
        for part in _check(SERVICES["web"])
    ]
    assert check != _check(SERVICES["web"]), "the check names another address"
    ready = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert ready.returncode == 0, ready.stderr
    settings.MEDIA_ROOT = tmp_path / "gone"  # not ready: media storage missing
    failing = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert failing.returncode != 0 and "503" in failing.stderr


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def _start(args: list[str], env: dict, log_path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.celery", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _until_zero(command: list[str], env: dict, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        result = subprocess.run(command, env=env, capture_output=True, timeout=120)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result.returncode
        time.sleep(1)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_health_checks_ping_their_own_node(redis_server, tmp_path):
    host = socket.gethostname()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_RESULT_BACKEND": redis_server.url,
        "SPERMGRADE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HOSTNAME": host,  # docker sets it to the container's hostname
        # `celery` on the PATH, as in the image.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    worker_check = _check(SERVICES["worker-cpu"])
    beat_check = _check(SERVICES["beat"])
    words = _words(SERVICES["worker-cpu"])
    node = words[words.index("--hostname") + 1]  # cpu@%h
    worker = _start(
        ["worker", "-Q", "cpu", "--pool", "solo", "--hostname", node],
        env,
        tmp_path / "worker.log",
    )
    beat = _start(_command(SERVICES["beat"])[3:], env, tmp_path / "beat.log")
    try:
        worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
        assert _until_zero(worker_check, env, 90) == 0, worker_log.read_text()
        assert _until_zero(beat_check, env, 90) == 0, beat_log.read_text()
        _stop(worker)
        after = subprocess.run(worker_check, env=env, capture_output=True, timeout=120)
        assert after.returncode != 0  # a stopped worker makes its service unhealthy
    finally:
        _stop(worker)
        _stop(beat)
