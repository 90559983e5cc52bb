"""Raw SQL of two admin pages that must not grow with the panel: one expert's
figures and one page of the clip explorer. The database aggregates; Python gets
a few hundred rows at most, never a row per vote or per clip. Table names come
from the models, as in ``annotation.sql``."""

from __future__ import annotations

from annotation.sql import _COLUMNS, CLIP, REPEAT, TABLE, VOTE

_COUNTS = _COLUMNS.split(", ")
_D_COLUMNS = ", ".join("d." + c for c in _COUNTS)
_D_TOTAL = " + ".join("d." + c for c in _COUNTS)

# A row of ``alias``'s clip is on an active clip. Inactive clips are few (usually
# none) and indexed: an anti-join against them is cheaper than joining every row
# to its clip.
_ACTIVE = (
    f"NOT EXISTS (SELECT 1 FROM {CLIP} x WHERE x.id = {{alias}} AND NOT x.is_active)"
)
# The month of a vote (UTC): grouped by the first instant of the month, shown as
# "YYYY-MM".
_MONTH = {
    "postgresql": (
        "date_trunc('month', v.created_at AT TIME ZONE 'UTC')",
        "to_char({}, 'YYYY-MM')",
    ),
    "sqlite": ("strftime('%%Y-%%m', v.created_at)", "{}"),
}
_EXPERT_GROUPS_SQL = """
SELECT {shown}, v.grade, {counts}, COUNT(*)
FROM {vote} v JOIN {table} d ON d.clip_id = v.clip_id
WHERE v.expert_id = %s AND {active}
GROUP BY {month}, v.grade, {counts}
"""
_EXPERT_SECONDS_SQL = f"""
SELECT v.seconds_spent
FROM {VOTE} v
WHERE v.expert_id = %s AND {_ACTIVE.format(alias="v.clip_id")}
ORDER BY v.seconds_spent
LIMIT %s OFFSET %s
"""
_EXPERT_REPEATS_SQL = f"""
SELECT v.grade, r.grade
FROM {REPEAT} r JOIN {VOTE} v ON v.clip_id = r.clip_id AND v.expert_id = r.expert_id
WHERE r.expert_id = %s
"""


def expert_vote_groups(connection, *, expert_id: int) -> list[tuple]:
    """The expert's votes on active clips, grouped: (month "YYYY-MM", grade,
    the clip's n_a … n_e, number of votes), one row per distinct combination."""
    month, shown = _MONTH[connection.vendor]
    statement = _EXPERT_GROUPS_SQL.format(
        month=month,
        shown=shown.format(month),
        counts=_D_COLUMNS,
        vote=VOTE,
        table=TABLE,
        active=_ACTIVE.format(alias="v.clip_id"),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [expert_id])
        return cursor.fetchall()


def expert_middle_seconds(connection, *, expert_id: int, n_votes: int) -> list[float]:
    """The middle one (odd ``n_votes``) or two (even) of the expert's seconds per
    vote on active clips, in order: their median is the median of them all."""
    if n_votes <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _EXPERT_SECONDS_SQL, [expert_id, 2 - n_votes % 2, (n_votes - 1) // 2]
        )
        return [float(row[0]) for row in cursor.fetchall()]


def expert_repeat_rows(connection, *, expert_id: int) -> list[tuple]:
    """(first grade, repeat grade) for each of the expert's hidden repeats."""
    with connection.cursor() as cursor:
        cursor.execute(_EXPERT_REPEATS_SQL, [expert_id])
        return cursor.fetchall()


# --- the clip explorer -------------------------------------------------------------

# Every sort key of the explorer depends on a clip's five counts alone, and clips
# share counts: the distinct count vectors (a few hundred where 40 experts grade
# 100,000 clips) stand for all the clips.
_VECTORS_SQL = f"""
SELECT {_D_COLUMNS}, COUNT(*)
FROM {TABLE} d
WHERE {_D_TOTAL} >= %s AND {_ACTIVE.format(alias="d.clip_id")}
GROUP BY {_D_COLUMNS}
"""
# A page's clips: each slice (clips of the page that share a rank) picked from the
# counts alone, in clip order, then joined to their clips. A slice's vectors are
# either rare (found through the counts index) or most of the panel (found by
# walking the clips in order until the slice is full): the planner picks.
_SLICE_SQL = f"""
SELECT * FROM (
    SELECT d.clip_id, {_D_COLUMNS}, {{position}} AS position
    FROM {TABLE} d
    WHERE {{where}} AND {_ACTIVE.format(alias="d.clip_id")}
    ORDER BY d.clip_id {{direction}}
    LIMIT {{limit}} OFFSET {{offset}}
) s{{position}}"""
_PAGE_SQL = f"""
SELECT c.id, c.is_synthetic, CASE WHEN c.video_file <> '' THEN 1 ELSE 0 END,
       {", ".join("p." + c for c in _COUNTS)}
FROM ({{slices}}) p JOIN {CLIP} c ON c.id = p.clip_id
ORDER BY p.position, p.clip_id {{direction}}
"""


def distribution_vectors(connection, *, min_votes: int) -> list[tuple]:
    """(n_a … n_e, number of active clips with these counts) for each distinct
    count vector of at least ``min_votes`` votes."""
    with connection.cursor() as cursor:
        cursor.execute(_VECTORS_SQL, [int(min_votes)])
        return cursor.fetchall()


def explorer_page_by_id(
    connection, *, min_votes: int, descending: bool, offset: int, limit: int
) -> list[tuple]:
    """Active clips of at least ``min_votes`` votes in id order, ``limit`` of them
    from ``offset``: (id, is_synthetic, has_video, n_a … n_e)."""
    direction = "DESC" if descending else "ASC"
    where = f"{_D_TOTAL} >= {int(min_votes)}"
    return _page(connection, [(where, int(offset), int(limit))], direction=direction)


def explorer_page_by_vectors(
    connection, *, slices: list[tuple[list[tuple[int, ...]], int, int]]
) -> list[tuple]:
    """The clips of each slice (count vectors n_a … n_e, offset, limit): the
    active clips whose counts are one of the vectors, in id order, ``limit`` of
    them from ``offset``; the slices one after the other. Rows: (id,
    is_synthetic, has_video, n_a … n_e)."""
    columns = f"({_D_COLUMNS})"
    pieces = []
    for vectors, offset, limit in slices:
        # Integers written into the statement (Python ints, nothing to escape): a
        # slice may have hundreds of vectors, past SQLite's limit on parameters.
        values = ", ".join(
            "(" + ", ".join(str(int(x)) for x in vector) + ")" for vector in vectors
        )
        pieces.append((f"{columns} IN (VALUES {values})", int(offset), int(limit)))
    return _page(connection, pieces, direction="ASC")


def _page(connection, pieces, *, direction: str) -> list[tuple]:
    pieces = [(where, offset, limit) for where, offset, limit in pieces if limit > 0]
    if not pieces:
        return []
    slices = " UNION ALL ".join(
        _SLICE_SQL.format(
            position=position,
            where=where,
            direction=direction,
            limit=limit,
            offset=offset,
        )
        for position, (where, offset, limit) in enumerate(pieces)
    )
    with connection.cursor() as cursor:
        cursor.execute(_PAGE_SQL.format(slices=slices, direction=direction))
        return cursor.fetchall()
