"""One named lock per kind of write that must never interleave (activating a
model version, replacing the queue's model priorities).

On PostgreSQL a transaction-scoped advisory lock: taken inside
``transaction.atomic()``, released at commit or rollback, so two admins' clicks
run one after the other in one lock order and neither can deadlock on row locks.
SQLite runs one writing transaction at a time already; there it is a no-op.
"""

from __future__ import annotations

import hashlib

from django.db import connection

# PostgreSQL error codes that ask the client to run the transaction again.
RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


def _key(name: str) -> int:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def transaction_lock(name: str) -> None:
    """Wait for, then hold until this transaction ends, the lock called ``name``."""
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("transaction_lock needs an open transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_key(name)])


def asks_for_retry(exc: BaseException) -> bool:
    """True when PostgreSQL asked for the transaction to be run again."""
    cause = exc.__cause__ or exc
    return (
        getattr(cause, "sqlstate", None) in RETRY_SQLSTATES
        or getattr(cause, "pgcode", None) in RETRY_SQLSTATES
    )
