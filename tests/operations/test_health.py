"""/healthz says the process is up (cheap, no data, no database); /readyz says the
database, migrations, broker and media storage are fine, or 503 naming the part
that is not. Both answer the proxy's and docker's checks: plain HTTP, the
container's name as host, no session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from tests.conftest import REPO_ROOT
from tests.servers.processes import free_port

PRODUCTION_LIKE = dict(
    ALLOWED_HOSTS=["grade.example.org"],
    SECURE_SSL_REDIRECT=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)


@pytest.fixture
def broker_folders():
    from config.celery import ensure_broker_folders

    ensure_broker_folders()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def _ready(client: Client) -> tuple[int, dict]:
    response = client.get("/readyz", HTTP_HOST="web:8000")
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content)


def test_healthz_answers_without_database_session_or_allowed_host(settings):
    # No django_db mark: pytest-django fails any database access in this test.
    for name, value in PRODUCTION_LIKE.items():
        setattr(settings, name, value)
    client = Client()
    response = client.get("/healthz", HTTP_HOST="web:8000")
    assert response.status_code == 200  # not a 400 (host) nor a 301 (HTTPS)
    assert response.content == b"ok\n"
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies
    # Only the two paths bypass the host check and the redirect.
    assert client.get("/login/", HTTP_HOST="web:8000").status_code == 400
    assert client.post("/healthz", HTTP_HOST="web:8000").status_code == 405


@pytest.mark.django_db
def test_readyz_is_ok_when_every_part_is(settings, broker_folders, media):
    for name, value in PRODUCTION_LIKE.items():
        setattr(settings, name, value)
    status, body = _ready(Client())
    assert status == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
        "media": "ok",
    }
    assert list(media.iterdir()) == []  # the write probe leaves nothing


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_reaches_a_real_redis_broker_and_names_a_dead_one(
    settings, redis_server, media
):
    settings.CELERY_BROKER_URL = redis_server.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    status, body = _ready(Client())
    assert status == 200 and body["checks"]["broker"] == "ok", body
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    status, body = _ready(Client())
    assert status == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"].startswith("unreachable (")
    assert "127.0.0.1" not in json.dumps(body)  # no addresses in the answer


@pytest.mark.django_db
def test_readyz_names_unapplied_migrations(broker_folders, media):
    # Inside the test's transaction: rolled back afterwards.
    MigrationRecorder.Migration.objects.filter(
        app="jobs", name="0001_heartbeats"
    ).delete()
    status, body = _ready(Client())
    assert status == 503 and body["failing"] == ["migrations"]
    assert body["checks"]["migrations"].startswith(
        "1 not applied (jobs.0001_heartbeats)"
    )


@pytest.mark.django_db
def test_readyz_names_media_storage_that_is_missing_or_read_only(
    settings, broker_folders, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "not-there"
    status, body = _ready(Client())
    assert status == 503 and body["failing"] == ["media"]
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    settings.MEDIA_ROOT = read_only
    if os.geteuid() != 0:  # root writes anywhere
        status, body = _ready(Client())
        assert status == 503 and body["failing"] == ["media"]
        assert body["checks"]["media"] == "unreachable (PermissionError)"


_PROBE = (
    "import json, django\n"
    "django.setup()\n"
    "from django.test import Client\n"
    "c = Client()\n"
    "h = c.get('/healthz', HTTP_HOST='web:8000')\n"
    "r = c.get('/readyz', HTTP_HOST='web:8000')\n"
    "print(json.dumps({'healthz': h.status_code, 'readyz': r.status_code,\n"
    "                  'body': json.loads(r.content)}))\n"
)


def test_with_everything_down_healthz_stays_up_and_readyz_names_each_part(tmp_path):
    """A real outage, not a patched one: a process whose database and broker
    ports are closed and whose MEDIA_ROOT is missing."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "CELERY_", "MEDIA_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SPERMGRADE_VAR_DIR=str(tmp_path / "var"),
        DEBUG="true",
        DATABASE_URL=f"postgres://nobody@127.0.0.1:{free_port()}/gone",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
        MEDIA_ROOT=str(tmp_path / "no-media"),
    )
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["healthz"] == 200
    assert report["readyz"] == 503
    body = report["body"]
    assert body["failing"] == ["database", "migrations", "broker", "media"]
    assert body["checks"]["database"] == "unreachable (OperationalError)"
    assert body["checks"]["migrations"] == "not checked (database unreachable)"
    assert "nobody" not in json.dumps(body)  # no user, host or path
