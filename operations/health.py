"""Readiness: can this process do everything it is there for?

Each check answers "ok" or a short problem. The problem names the failing part
and the kind of error only (never a host, user or path): the answer is
unauthenticated, and the full error goes to the log.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from kombu import Connection

logger = logging.getLogger(__name__)

OK = "ok"
BROKER_TIMEOUT_SECONDS = 3


def _failed(part: str, exc: BaseException) -> str:
    logger.warning("readiness: %s failed", part, exc_info=exc)
    return f"unreachable ({type(exc).__name__})"


def database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return _failed("database", exc)
    return OK


def migrations_check() -> str:
    """Every migration of this code is applied (web runs ``migrate`` first)."""
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return _failed("migrations", exc)
    if not plan:
        return OK
    names = [f"{m.app_label}.{m.name}" for m, _ in plan]
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{len(names)} not applied ({shown}): run manage.py migrate"


def broker_check() -> str:
    """The Celery broker accepts a connection (Redis answers a ping when the
    channel opens); the embedded filesystem broker's folders exist."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folders = [options.get("data_folder_in"), options.get("data_folder_out")]
        if not all(folder and Path(folder).is_dir() for folder in folders):
            return "broker folders missing (start a worker once, or make demo)"
        return OK
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=options,
            connect_timeout=BROKER_TIMEOUT_SECONDS,
        ) as conn:
            conn.ensure_connection(max_retries=0)
            conn.default_channel  # noqa: B018 - opening it talks to the broker
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return _failed("broker", exc)
    return OK


def media_check() -> str:
    """MEDIA_ROOT is a folder this process can write into (recordings, clips,
    snapshots and model artifacts all land there)."""
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return "MEDIA_ROOT is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".readyz-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        return _failed("media", exc)
    return OK


CHECKS: dict[str, Callable[[], str]] = {
    "database": database_check,
    "migrations": migrations_check,
    "broker": broker_check,
    "media": media_check,
}


def readiness() -> dict[str, str]:
    """{part: "ok" or its problem}, every part checked (migrations only when
    the database answered)."""
    results = {}
    for part, check in CHECKS.items():
        if part == "migrations" and results["database"] != OK:
            results[part] = "not checked (database unreachable)"
            continue
        results[part] = check()
    return results
