"""Raw SQL of the panel statistics: all votes as arrays, read in one statement
each (the ORM builds a model row per vote; a few hundred thousand votes make
that the cost). Table names come from the models, as in ``annotation.sql``."""

from __future__ import annotations

from annotation.sql import _COLUMNS, CLIP, HISTORY, REPEAT, TABLE, VOTE

# --- all votes as arrays (panel statistics) -----------------------------------------

_PANEL_VOTES_SQL = f"""
SELECT v.clip_id, v.expert_id, v.grade, v.created_at, v.seconds_spent
FROM {VOTE} v JOIN {CLIP} c ON c.id = v.clip_id
WHERE c.is_active
ORDER BY v.clip_id, v.expert_id
"""
_REPEAT_PAIRS_SQL = f"""
SELECT r.expert_id, v.grade, r.grade
FROM {REPEAT} r JOIN {VOTE} v ON v.clip_id = r.clip_id AND v.expert_id = r.expert_id
"""
_VOTES_MARKER_SQL = f"SELECT COALESCE(MAX(id), 0), COUNT(*) FROM {HISTORY}"


_D_COLUMNS = ", ".join("d." + c for c in _COLUMNS.split(", "))
# Seconds since the epoch, so 100,000 votes need no datetime objects.
_EPOCH = {
    "postgresql": "EXTRACT(EPOCH FROM v.created_at)::float8",
    "sqlite": "CAST(strftime('%%s', v.created_at) AS REAL)",
}
_EXPERT_VOTES_SQL = """
SELECT v.grade, {epoch}, v.seconds_spent, {counts}
FROM {vote} v
JOIN {clip} c ON c.id = v.clip_id
JOIN {table} d ON d.clip_id = v.clip_id
WHERE v.expert_id = %s AND c.is_active
ORDER BY v.created_at
"""
_EXPLORER_SQL = f"""
SELECT c.id, c.is_synthetic, CASE WHEN c.video_file <> '' THEN 1 ELSE 0 END,
       {_D_COLUMNS}
FROM {CLIP} c JOIN {TABLE} d ON d.clip_id = c.id
WHERE c.is_active
ORDER BY c.id
"""


def expert_votes_rows(connection, *, expert_id: int) -> list[tuple]:
    """The expert's votes on active clips with each clip's panel counts:
    (grade, created_at as epoch seconds, seconds spent, n_a … n_e), oldest first."""
    statement = _EXPERT_VOTES_SQL.format(
        epoch=_EPOCH[connection.vendor],
        counts=_D_COLUMNS,
        vote=VOTE,
        clip=CLIP,
        table=TABLE,
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [expert_id])
        return cursor.fetchall()


def explorer_rows(connection) -> list[tuple]:
    """Every active clip: (id, is_synthetic, has_video, n_a … n_e), in id order."""
    with connection.cursor() as cursor:
        cursor.execute(_EXPLORER_SQL)
        return cursor.fetchall()


def panel_votes_rows(connection) -> list[tuple]:
    """Every vote on an active clip: (clip, expert, grade, created_at, seconds)."""
    with connection.cursor() as cursor:
        cursor.execute(_PANEL_VOTES_SQL)
        return cursor.fetchall()


def repeat_pairs_rows(connection) -> list[tuple]:
    """(expert, first grade, repeat grade) for every hidden repeat."""
    with connection.cursor() as cursor:
        cursor.execute(_REPEAT_PAIRS_SQL)
        return cursor.fetchall()


def votes_marker(connection) -> int:
    """Grows with every vote written or changed (the newest vote-history id)."""
    with connection.cursor() as cursor:
        cursor.execute(_VOTES_MARKER_SQL)
        return int(cursor.fetchone()[0])
