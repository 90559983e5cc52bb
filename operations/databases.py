"""The database half of a backup: PostgreSQL through pg_dump / pg_restore, SQLite
through its online backup API.

A dump comes with facts read *in the same snapshot* as the dump itself: every
table's row count, the applied migrations and the media files the rows name.
For PostgreSQL a repeatable-read transaction exports its snapshot and pg_dump
runs inside it (``--snapshot``); for SQLite the facts are read from the copy.
So the files the backup must hold are those the dumped rows name, not those of
a moment later, and a restore can be checked table by table.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, transaction

from annotation.models import Clip, Recording
from registry.models import ModelVersion, Snapshot

ENGINES = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.sqlite3": "sqlite",
}
DUMP_FILES = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}
# Columns naming files under MEDIA_ROOT: (model, field, "file" or "folder").
MEDIA_REFERENCES = (
    (Recording, "source", "file"),
    (Clip, "array_file", "file"),
    (Clip, "video_file", "file"),
    (Snapshot, "path", "folder"),
    (ModelVersion, "artifact_path", "folder"),
)
# Django's and psycopg's own OPTIONS keys, not libpq's.
_NOT_LIBPQ = {
    "isolation_level",
    "server_side_binding",
    "pool",
    "assume_role",
    "prepare_threshold",
    "cursor_factory",
}
TOOL_TIMEOUT_SECONDS = 6 * 3600


class DatabaseBackupError(Exception):
    """A dump or restore could not be made; the message says why."""


@dataclass
class DumpFacts:
    engine: str
    tables: dict[str, int]
    migrations: list[list[str]]
    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)


def engine() -> str:
    name = ENGINES.get(connection.settings_dict["ENGINE"])
    if name is None:
        raise DatabaseBackupError(
            "SpermGrade backs up PostgreSQL and SQLite databases, not "
            f"{connection.settings_dict['ENGINE']}."
        )
    return name


def _facts(cursor, engine_name: str, tables: list[str]) -> DumpFacts:
    quote = connection.ops.quote_name
    counts = {}
    for table in sorted(tables):
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608
        counts[table] = cursor.fetchone()[0]
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    facts = DumpFacts(
        engine=engine_name,
        tables=counts,
        migrations=[list(row) for row in cursor.fetchall()],
    )
    for model, field_name, kind in MEDIA_REFERENCES:
        table, column = model._meta.db_table, model._meta.get_field(field_name).column
        if table not in counts:
            continue
        cursor.execute(
            f"SELECT {quote(column)} FROM {quote(table)} "  # noqa: S608
            f"WHERE {quote(column)} IS NOT NULL AND {quote(column)} <> ''"
        )
        names = {str(row[0]).strip("/") for row in cursor.fetchall()}
        (facts.files if kind == "file" else facts.folders).update(names)
    return facts


# --- PostgreSQL -------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise DatabaseBackupError(
        f"{name} is not installed: apt-get install postgresql-client (the "
        "SpermGrade image has it)."
    )


def _conninfo(db: dict) -> str:
    """A libpq connection string for ``db`` (Django's settings), without the
    password (passed in PGPASSWORD, so it is not on a command line)."""
    values = {
        "dbname": db.get("NAME"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "user": db.get("USER"),
        **{
            key: value
            for key, value in (db.get("OPTIONS") or {}).items()
            if key not in _NOT_LIBPQ and isinstance(value, str | int)
        },
    }

    def quoted(value) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={quoted(v)}" for key, v in values.items() if v)


def _run_tool(args: list[str], db: dict) -> None:
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    try:
        result = subprocess.run(
            args,
            env=env,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DatabaseBackupError(f"{Path(args[0]).name} took too long") from None
    if result.returncode != 0:
        said = result.stderr.strip()[-1500:] or f"exit status {result.returncode}"
        raise DatabaseBackupError(f"{Path(args[0]).name} failed: {said}")


def _postgres_dump(target: Path) -> DumpFacts:
    if connection.in_atomic_block:
        raise DatabaseBackupError("a backup cannot be taken inside a transaction")
    with transaction.atomic(), connection.cursor() as cursor:
        # The first statement of the transaction: every read below, and pg_dump
        # (which imports the exported snapshot), sees the same moment.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        db = connection.settings_dict
        _run_tool(
            [
                _tool("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={target}",
                f"--dbname={_conninfo(db)}",
            ],
            db,
        )
        tables = connection.introspection.table_names(cursor)
        return _facts(cursor, "postgresql", tables)


def _postgres_restore(dump: Path) -> None:
    db = connection.settings_dict
    connection.close()
    _run_tool(
        [
            _tool("pg_restore"),
            "--exit-on-error",
            "--single-transaction",
            # The instance's own role owns everything, whoever owned it before.
            "--no-owner",
            "--no-privileges",
            f"--dbname={_conninfo(db)}",
            str(dump),
        ],
        db,
    )


# --- SQLite -----------------------------------------------------------------------


def _sqlite_tables(db: sqlite3.Connection) -> list[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return [row[0] for row in rows]


def _sqlite_dump(target: Path) -> DumpFacts:
    source = sqlite3.connect(
        f"file:{connection.settings_dict['NAME']}?mode=ro", uri=True
    )
    copy = sqlite3.connect(target)
    try:
        with copy:
            source.backup(copy)  # the online backup API: one consistent copy
        return _facts(copy.cursor(), "sqlite", _sqlite_tables(copy))
    finally:
        source.close()
        copy.close()


def _sqlite_restore(dump: Path) -> None:
    name = connection.settings_dict["NAME"]
    connection.close()
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
    target = sqlite3.connect(name)
    try:
        with target:
            source.backup(target)
    finally:
        source.close()
        target.close()


# --- both -------------------------------------------------------------------------


def database_dump(*, folder: Path) -> tuple[str, DumpFacts]:
    """Dump the instance's database into ``folder``: (file name, facts)."""
    kind = engine()
    name = DUMP_FILES[kind]
    facts = (_postgres_dump if kind == "postgresql" else _sqlite_dump)(folder / name)
    return name, facts


def database_tables() -> list[str]:
    """The tables of this instance's database (an SQLite file is created)."""
    if engine() == "sqlite":
        Path(connection.settings_dict["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    return connection.introspection.table_names()


def database_restore(*, dump: Path, kind: str) -> None:
    (_postgres_restore if kind == "postgresql" else _sqlite_restore)(dump)


def table_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        return _facts(cursor, engine(), tables).tables
