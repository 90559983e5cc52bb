"""The deployment files agree with the code: compose names every service, and
.env.example documents every variable the settings read."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT

_READ_PATTERNS = (
    r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]*)\"",
    r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]*)\"",
    r"database_from_url\(\s*\"([A-Z][A-Z0-9_]*)\"",
)


def variables_read_by_settings() -> set[str]:
    source = "\n".join(
        path.read_text() for path in sorted((REPO_ROOT / "config").glob("settings*.py"))
    )
    names: set[str] = set()
    for pattern in _READ_PATTERNS:
        names.update(re.findall(pattern, source))
    return names


def variables_documented_in_env_example() -> set[str]:
    text = (REPO_ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_settings_parser_finds_the_core_variables():
    # Guards the regular expressions above: if they found nothing, the next test
    # would pass vacuously.
    assert {
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "SECRET_KEY",
        "DEBUG",
        "VOTES_PER_CLIP",
        "MEDIA_ROOT",
    } <= variables_read_by_settings()


def test_env_example_documents_every_variable_the_settings_read():
    missing = variables_read_by_settings() - variables_documented_in_env_example()
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_holds_no_real_secret():
    text = (REPO_ROOT / ".env.example").read_text()
    secret = re.search(r"^SECRET_KEY=(.*)$", text, flags=re.MULTILINE)
    assert secret and "change-me" in secret.group(1)


def _queues_of(command) -> set[str]:
    words = (command if isinstance(command, str) else " ".join(command)).split()
    return set(words[words.index("-Q") + 1].split(",")) if "-Q" in words else set()


def _command_text(service: dict) -> str:
    command = service.get("command") or ""
    return command if isinstance(command, str) else " ".join(map(str, command))


def test_compose_workers_consume_exactly_the_queues_tasks_are_routed_to(settings):
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web"} <= set(services)
    assert "gunicorn" in _command_text(services["web"])
    assert "migrate" in _command_text(services["web"])
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    workers = {
        name: _queues_of(_command_text(service))
        for name, service in services.items()
        if " worker " in f" {_command_text(service)} "
    }
    assert workers, "no Celery worker in docker-compose.yml"
    assert set().union(*workers.values()) == routed, (workers, routed)
    # beat only where there is a schedule for it to run
    has_beat = any(" beat " in f" {_command_text(s)} " for s in services.values())
    assert has_beat == bool(getattr(settings, "CELERY_BEAT_SCHEDULE", None))


def test_the_gpu_worker_trains_one_task_per_process_on_its_own_gpu():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    gpu = {
        name: service
        for name, service in compose["services"].items()
        if "gpu" in _queues_of(_command_text(service))
    }
    assert gpu, "no worker consumes the gpu queue"
    for name, service in gpu.items():
        words = _command_text(service).split()
        assert words[words.index("--concurrency") + 1] == "1", name
        assert words[words.index("--max-tasks-per-child") + 1] == "1", name
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices[0]["device_ids"]) == 1, "one GPU per worker"
        assert "gpu" in service.get("profiles", []), "CPU-only hosts skip it"


def test_every_task_the_web_side_sends_is_registered_and_routed(settings):
    from annotation.services import enqueue
    from config.celery import app

    app.loader.import_default_modules()
    for name in enqueue.TASK_NAMES:
        assert name in app.tasks, f"{name} is sent but no worker task has that name"
        assert name in settings.CELERY_TASK_ROUTES, f"{name} has no queue"
    own = {name for name in app.tasks if name.startswith("workers.")}
    assert own == set(settings.CELERY_TASK_ROUTES)


def _apt_lists_present() -> bool:
    result = subprocess.run(
        ["apt-cache", "policy", "postgresql"], capture_output=True, text=True
    )
    return "Candidate:" in result.stdout and "Candidate: (none)" not in result.stdout


def test_ci_dry_run_resolves_its_packages_and_tests_both_databases():
    if shutil.which("apt-get") is None or not _apt_lists_present():
        pytest.skip("apt package lists are not available here (run apt-get update)")
    result = subprocess.run(
        ["bash", str(REPO_ROOT / ".ci" / "run")],
        env={**os.environ, "CI_DRY_RUN": "1"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = [line for line in result.stdout.splitlines() if " -m pytest" in line]
    on_sqlite = [line for line in runs if "SPERMGRADE_TEST_SQLITE=1" in line]
    assert len(runs) == 2 and len(on_sqlite) == 1, runs
    sqlite_paths = on_sqlite[0].split("-m pytest", 1)[1].split()
    assert {"tests/annotation", "tests/workers"} <= set(sqlite_paths)
    for path in sqlite_paths:
        assert (REPO_ROOT / path).is_dir(), f"make test-sqlite names {path}"


def test_make_demo_runs_commands_that_exist(settings):
    from django.core.management import get_commands

    result = subprocess.run(
        ["make", "-n", "demo"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"manage\.py (\w+)", result.stdout)
    assert {"migrate", "demo_data", "demo_recordings", "runserver"} <= set(commands)
    known = get_commands()
    assert all(name in known for name in commands), commands
    worker = next(line for line in result.stdout.splitlines() if " worker " in line)
    assert "-A config.celery" in worker
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert _queues_of(worker) == routed


def test_image_runs_unprivileged_and_leaves_local_state_out():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".env", ".git"} <= set(ignored)


def test_a_proxy_with_a_body_limit_is_the_only_way_in():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    published = {
        name
        for name, s in services.items()
        if any(not str(port).startswith("127.0.0.1:") for port in s.get("ports", []))
    }
    assert published == {"proxy"}, published  # others on the host's loopback only
    assert services["web"]["environment"]["TRUST_X_FORWARDED_PROTO"] == "true"
    mount = next(v for v in services["proxy"]["volumes"] if "Caddyfile" in v)
    caddyfile = (REPO_ROOT / mount.split(":")[0]).read_text()
    assert re.search(r"request_body\s*{\s*max_size\s+\S+", caddyfile)
    assert "reverse_proxy web:8000" in caddyfile
    assert re.search(r"^\s*tls\s", caddyfile, re.M)


def test_the_image_bakes_in_the_code_version_it_was_built_from():
    """Model versions record the code version; the image has no .git, so the
    commit travels as a build argument into the image's environment."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "ARG SPERMGRADE_CODE_VERSION" in dockerfile
    assert "ENV SPERMGRADE_CODE_VERSION=${SPERMGRADE_CODE_VERSION}" in dockerfile
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    build = compose["x-app"]["build"]
    assert build["args"]["SPERMGRADE_CODE_VERSION"].startswith(
        "${SPERMGRADE_CODE_VERSION"
    )
    readme = (REPO_ROOT / "README.md").read_text()
    assert "SPERMGRADE_CODE_VERSION=$(git rev-parse HEAD) docker compose up" in readme
