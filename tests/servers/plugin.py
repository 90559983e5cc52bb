"""pytest plugin (``-p tests.servers.plugin``): real servers for the test suite.

Before pytest-django configures Django, a throwaway PostgreSQL is started and
``DATABASE_URL`` points at it, so the whole suite runs on PostgreSQL as production
does. Where PostgreSQL cannot start, the suite runs on SQLite and tests marked
``postgres`` are skipped with the reason, or fail when ``REQUIRE_SERVICES=1``.
Redis is started on first use by the ``redis_server`` fixture, likewise.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.servers.processes import ServerUnavailable, start_postgres, start_redis

_state: dict = {
    "postgres": None,
    "postgres_error": None,
    "redis": None,
    "redis_error": None,
    "tmp": None,
}


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def missing_service(reason: str) -> None:
    """Skip the calling test, or fail it under REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # Runs before pytest-django reads settings: point them at throwaway folders and
    # the throwaway PostgreSQL.
    tmp = tempfile.mkdtemp(prefix="spermgrade-test-")
    _state["tmp"] = tmp
    os.environ["SPERMGRADE_VAR_DIR"] = tmp
    os.environ["MEDIA_ROOT"] = os.path.join(tmp, "media")
    # whitenoise warns when STATIC_ROOT is missing; tests serve static from finders.
    os.makedirs(os.path.join(tmp, "staticfiles"), exist_ok=True)
    os.environ.setdefault("DEBUG", "true")
    os.environ.pop("CELERY_BROKER_URL", None)
    if os.environ.get("SPERMGRADE_TEST_SQLITE") == "1":
        _state["postgres_error"] = "SPERMGRADE_TEST_SQLITE=1 asked for SQLite"
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/test.sqlite3"
    else:
        try:
            server = start_postgres()
        except ServerUnavailable as exc:
            _state["postgres_error"] = str(exc)
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/test.sqlite3"
        else:
            _state["postgres"] = server
            os.environ["DATABASE_URL"] = server.url
    return (yield)


def pytest_report_header(config):
    server = _state["postgres"]
    if server:
        return f"services: PostgreSQL on 127.0.0.1:{server.port} (throwaway)"
    return f"services: SQLite (PostgreSQL unavailable: {_state['postgres_error']})"


def pytest_collection_modifyitems(config, items):
    if _state["postgres"] is not None:
        return
    reason = f"needs PostgreSQL: {_state['postgres_error']}"
    # A run that asked for SQLite (the demo's database) leaves the PostgreSQL-only
    # tests to the PostgreSQL run, even in CI.
    sqlite_asked = os.environ.get("SPERMGRADE_TEST_SQLITE") == "1"
    for item in items:
        if item.get_closest_marker("postgres"):
            if services_required() and not sqlite_asked:
                item.user_properties.append(("missing", reason))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item):
    for name, value in item.user_properties:
        if name == "missing":
            pytest.fail(f"REQUIRE_SERVICES=1 but {value}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The throwaway server's URL (its own database, not the test database)."""
    server = _state["postgres"]
    if server is None:
        missing_service(f"needs PostgreSQL: {_state['postgres_error']}")
    return server.url


@pytest.fixture(scope="session")
def redis_server():
    if _state["redis"] is None and _state["redis_error"] is None:
        try:
            _state["redis"] = start_redis()
        except ServerUnavailable as exc:
            _state["redis_error"] = str(exc)
    if _state["redis"] is None:
        missing_service(f"needs Redis: {_state['redis_error']}")
    return _state["redis"]


def pytest_unconfigure(config):
    if _state["redis"] is not None:
        _state["redis"].stop()
    if _state["postgres"] is not None:
        _state["postgres"].stop()
    if _state["tmp"]:
        shutil.rmtree(_state["tmp"], ignore_errors=True)
