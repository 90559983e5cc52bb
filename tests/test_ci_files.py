"""The deployment files agree with the code: compose names every service, and
.env.example documents every variable the settings read."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO_ROOT

_READ_PATTERNS = (
    r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]*)\"",
    r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]*)\"",
    r"database_from_url\(\s*\"([A-Z][A-Z0-9_]*)\"",
)


def variables_read_by_settings() -> set[str]:
    source = (REPO_ROOT / "config" / "settings.py").read_text()
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


def test_compose_file_runs_the_whole_stack():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {
        "postgres",
        "redis",
        "web",
        "worker-cpu",
        "worker-gpu",
        "beat",
    }
    assert "gunicorn" in str(services["web"]["command"])
    assert "migrate" in str(services["web"]["command"])
    gpu_devices = services["worker-gpu"]["deploy"]["resources"]["reservations"][
        "devices"
    ]
    assert gpu_devices[0]["driver"] == "nvidia"
    assert "gpu" in gpu_devices[0]["capabilities"]
    assert "-Q" in services["worker-gpu"]["command"]
    assert "beat" in services["beat"]["command"]
    assert "healthcheck" in services["postgres"]


def test_ci_script_requires_the_real_services():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in script
    for package in ("postgresql", "redis-server", "chromium"):
        assert package in script
    assert "REQUIRE_SERVICES=1" in script
    assert "make test" in script


def test_makefile_offers_the_two_readme_commands():
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    assert {"demo", "test", "lint", "bench-web"} <= targets
    # The test plugin (-p tests.services) needs the repository root on sys.path.
    assert "-m pytest" in makefile
    assert "ensure_broker_folders" in makefile
    assert "demo_data" in makefile


def test_image_runs_unprivileged_and_leaves_local_state_out():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.MULTILINE)
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".env", ".git"} <= set(ignored)
