"""Raw SQL of the panel statistics: all votes as arrays, read in one statement
each (the ORM builds a model row per vote; a few hundred thousand votes make
that the cost). Table names come from the models, as in ``annotation.sql``."""

from __future__ import annotations

import numpy as np

from annotation.sql import CLIP, HISTORY, REPEAT, VOTE
from modeling.grades import GRADES

# --- all votes as arrays (panel statistics) -----------------------------------------

# Every vote on an active clip. PostgreSQL sends each column as one array in its
# binary form (array_send), which numpy reads as it is: no Python object per vote
# (4,000,000 rows as tuples took over a minute, mostly parsing timestamps). Grades
# as 1..5 (their position in GRADES), the time as the month; unordered.
_GRADE_LETTERS = "".join(GRADES)
_PANEL_VOTES_SQL = {
    "postgresql": f"""
SELECT array_send(array_agg(v.clip_id)), array_send(array_agg(v.expert_id)),
       array_send(array_agg(strpos('{_GRADE_LETTERS}', v.grade))),
       array_send(array_agg(v.created_at)), array_send(array_agg(v.seconds_spent))
FROM {VOTE} v JOIN {CLIP} c ON c.id = v.clip_id
WHERE c.is_active
""",
    "sqlite": f"""
SELECT v.clip_id, v.expert_id, instr('{_GRADE_LETTERS}', v.grade),
       (CAST(strftime('%Y', v.created_at) AS INTEGER) - 1970) * 12
       + CAST(strftime('%m', v.created_at) AS INTEGER) - 1,
       v.seconds_spent
FROM {VOTE} v JOIN {CLIP} c ON c.id = v.clip_id
WHERE c.is_active
""",
}
# On PostgreSQL clip, expert and grade usually travel packed in one bigint,
# (clip × span + expert) × 8 + grade, the span the power of 16 above the largest
# expert id, read in the same statement (unpacked with shifts): two arrays fewer to
# aggregate, each of which costs PostgreSQL about as much as the scan. Only while
# the ids keep the key far below 2^63 (checked first, with room for ids to grow
# meanwhile); the statement above otherwise. NOT IN a hashed list of the inactive
# clips (usually none) is cheaper than joining every vote to its clip.
_PANEL_VOTES_PACKED_SQL = f"""
SELECT max(s.span),
       array_send(array_agg((v.clip_id * s.span + v.expert_id) * 8
                            + strpos('{_GRADE_LETTERS}', v.grade))),
       array_send(array_agg(v.created_at)), array_send(array_agg(v.seconds_spent))
FROM (
    SELECT 1::int8 << (4 * length(to_hex(COALESCE(max(expert_id), 0)))) AS span
    FROM {VOTE}
) s, {VOTE} v
WHERE v.clip_id NOT IN (SELECT id FROM {CLIP} WHERE NOT is_active)
"""
_ID_RANGE_SQL = (
    f"SELECT (SELECT max(clip_id) FROM {VOTE}), (SELECT max(expert_id) FROM {VOTE})"
)
PACKED_LIMIT = 2**59  # (largest clip id + 1) × span × 8 below it


_REPEAT_PAIRS_SQL = f"""
SELECT r.expert_id, v.grade, r.grade
FROM {REPEAT} r JOIN {VOTE} v ON v.clip_id = r.clip_id AND v.expert_id = r.expert_id
"""
_VOTES_MARKER_SQL = f"SELECT COALESCE(MAX(id), 0), COUNT(*) FROM {HISTORY}"


def panel_votes_columns(connection) -> tuple[np.ndarray, ...]:
    """Every vote on an active clip, in no particular order, as arrays: clip id,
    expert id, grade (1..5), month (datetime64[M], UTC) and seconds spent."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PANEL_VOTES_SQL[connection.vendor])
            table = np.array(cursor.fetchall(), dtype=np.float64).reshape(-1, 5)
        return _columns(table)
    import psycopg  # only here: SQLite needs no driver for PostgreSQL

    connection.ensure_connection()
    # Django's cursors bind parameters on the client, which rules out binary
    # results; the bytes of the arrays then come as they are, not as hex text.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_ID_RANGE_SQL)
        clips, experts = (int(n or 0) for n in cursor.fetchone())
        packed = (clips + 1) * 16 ** len(f"{experts:x}") * 8 < PACKED_LIMIT
        unpacked = _PANEL_VOTES_SQL["postgresql"]
        cursor.execute(_PANEL_VOTES_PACKED_SQL if packed else unpacked, binary=True)
        columns = cursor.fetchone()
    if columns[1] is None:  # no votes: array_agg gives NULL
        return _columns(np.zeros((0, 5)))
    if packed:
        key, created, seconds = map(_from_array_send, columns[1:])
        bits = int(columns[0]).bit_length() - 1  # the span is 2**bits
        clip, expert, grade = key >> (bits + 3), (key >> 3) & ((1 << bits) - 1), key & 7
    else:
        clip, expert, grade, created, seconds = map(_from_array_send, columns)
        clip, expert, grade = (a.astype(np.int64) for a in (clip, expert, grade))
    return clip, expert, grade, created.astype("datetime64[M]"), seconds


def _columns(table: np.ndarray) -> tuple[np.ndarray, ...]:
    clip, expert, grade, month = table[:, :4].T.astype(np.int64)
    return clip, expert, grade, month.astype("datetime64[M]"), table[:, 4]


# Element types (by type oid) that a binary array of the panel's votes may hold.
_ELEMENT_TYPES = {20: ">i8", 21: ">i2", 23: ">i4", 701: ">f8", 1184: ">i8"}
_TIMESTAMPTZ = 1184  # microseconds since 2000-01-01 00:00 UTC
_PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")


def _from_array_send(data: bytes) -> np.ndarray:
    """A one-dimensional PostgreSQL array without NULLs, as array_send writes it
    (ndim, has-nulls flag, element type, length, lower bound, then each element
    as its byte length and its big-endian value), as a numpy array."""
    ndim, has_nulls, oid = np.frombuffer(data, dtype=">i4", count=3)
    if ndim != 1 or has_nulls or oid not in _ELEMENT_TYPES:
        raise ValueError(f"expected a 1-D array without NULLs, got {ndim=} {oid=}")
    n = int(np.frombuffer(data, dtype=">i4", count=1, offset=12)[0])
    element = np.dtype(_ELEMENT_TYPES[int(oid)])
    cells = np.frombuffer(
        data, dtype=[("size", ">i4"), ("value", element)], count=n, offset=20
    )
    if np.any(cells["size"] != element.itemsize):
        raise ValueError("array elements of unexpected width")
    values = cells["value"].astype(element.newbyteorder("="))
    if oid == _TIMESTAMPTZ:
        return _PG_EPOCH + values.astype("timedelta64[us]")
    return values


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
