"""The PostgreSQL fast path of ``exports.bundle``: votes, crowd-kit rows and
vote history formatted by the database (COPY ... TO STDOUT) and joined to
temporary tables of the pseudonyms."""

from __future__ import annotations

from annotation.models import RepeatVote, Vote, VoteHistory
from exports.pseudonyms import clip_pseudonym, expert_pseudonym


def _pg_copy(
    writer,
    name: str,
    header: list[str],
    select: str,
) -> int:
    """PostgreSQL formats the rows itself (COPY ... TO STDOUT, in UTC), joined
    to temporary tables of the pseudonyms: millions of rows in seconds. COPY
    hands out one row per block, so blocks are gathered to ~1 MB before each
    write (hashing and deflate see few, large writes). Rows come in the
    select's order (pseudonym order: see exports/bundle_tables.py)."""
    from django.db import connection, transaction

    n = 0
    with writer.open(name) as fh, transaction.atomic():
        fh.write((",".join(header) + "\n").encode())
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        buffer = bytearray()
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)") as copy,
        ):
            for block in copy:
                buffer += block
                if len(buffer) >= 1 << 20:
                    n += buffer.count(b"\n")
                    fh.write(bytes(buffer))
                    buffer.clear()
        n += buffer.count(b"\n")
        fh.write(bytes(buffer))
    return n


def _pg_pseudonym_tables(clip_ids: set[int]) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        for table in ("export_clip", "export_expert"):
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, "
                # byte order: as Python sorts them, and far cheaper to sort
                'name text COLLATE "C") ON COMMIT PRESERVE ROWS'
            )
            cursor.execute(f"TRUNCATE {table}")
    # The ids are read first: the connection cannot query during a COPY.
    user_ids = list(get_user_model().objects.values_list("pk", flat=True))
    with connection.connection.cursor() as cursor:
        with cursor.copy("COPY export_clip (id, name) FROM STDIN") as copy:
            for pk in clip_ids:
                copy.write_row((pk, clip_pseudonym(pk)))
        with cursor.copy("COPY export_expert (id, name) FROM STDIN") as copy:
            for pk in user_ids:
                copy.write_row((pk, expert_pseudonym(pk)))


def _rounded(column: str) -> str:
    """The time rounded down to EXPORT_TIME_RESOLUTION_SECONDS, in SQL."""
    from django.conf import settings

    step = int(settings.EXPORT_TIME_RESOLUTION_SECONDS)
    if step == 1:  # the default: the cheaper truncation
        return f"date_trunc('second', {column})"
    return f"to_timestamp(floor(extract(epoch FROM {column}) / {step}) * {step})"


def votes_write_pg(writer, *, clip_ids: set[int]) -> tuple[int, int]:
    """votes.csv, crowdkit.csv and vote_history.csv of the exported clips
    (``clip_ids``): the join to their pseudonyms leaves the others' rows out."""
    _pg_pseudonym_tables(clip_ids)
    joins = (
        "JOIN export_clip c ON c.id = v.clip_id "
        "JOIN export_expert e ON e.id = v.expert_id"
    )
    created, updated = _rounded("v.created_at"), _rounded("v.updated_at")
    columns = f"c.name, e.name, v.grade, {created}, {updated}, v.seconds_spent"
    select = (
        f"SELECT {columns}, 0 FROM {Vote._meta.db_table} v {joins} UNION ALL "
        f"SELECT {columns}, 1 FROM {RepeatVote._meta.db_table} v {joins} "
        "ORDER BY 1, 2, 7"
    )
    header = ["clip", "expert", "grade", "created_at", "updated_at", "seconds_spent"]
    n = _pg_copy(writer, "votes.csv", [*header, "is_repeat"], select)
    # A second read of the votes: cutting these rows from the first stream in
    # Python measured slower (benchmarks/export.py) than PostgreSQL doing it.
    _pg_copy(
        writer,
        "crowdkit.csv",
        ["task", "worker", "label"],
        f"SELECT c.name, e.name, v.grade FROM {Vote._meta.db_table} v {joins} "
        "ORDER BY 1, 2",
    )
    history = _pg_copy(
        writer,
        "vote_history.csv",
        ["clip", "expert", "action", "grade", "previous_grade", "is_repeat", "at"],
        f"SELECT c.name, e.name, v.action, v.grade, v.previous_grade, "
        f"v.is_repeat::int, {_rounded('v.at')} FROM {VoteHistory._meta.db_table} v "
        f"{joins} ORDER BY 1, 2, v.at, v.id",
    )
    return n, history
