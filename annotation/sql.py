"""All raw SQL of the app: the counting triggers, and the few hot queries.

Triggers keep ``ClipDistribution`` equal to the votes.

Counting happens inside the database, in the same transaction as the vote, so the
per-clip counts cannot drift from ``annotation_vote`` whatever writes the votes (the
API, the admin, bulk inserts, raw SQL). Reading 100,000 distributions is then a scan
of 100,000 small rows instead of an aggregation over millions of votes.

``install`` is idempotent. It runs in migration 0002 and again after every
``migrate`` (``apps.py``), because SQLite drops a table's triggers when a later
migration rebuilds that table.
"""

from __future__ import annotations

import functools

from annotation.models import (
    Clip,
    ClipDistribution,
    ClipLease,
    ClipModelPriority,
    RepeatVote,
    Vote,
    VoteHistory,
)
from annotation.shuffle import shuffle_key_sql_params, shuffle_params
from modeling.grades import GRADES

# Table names from the models, never spelled out.
TABLE = ClipDistribution._meta.db_table
CLIP = Clip._meta.db_table
VOTE = Vote._meta.db_table
LEASE = ClipLease._meta.db_table
REPEAT = RepeatVote._meta.db_table
HISTORY = VoteHistory._meta.db_table
PRIORITY = ClipModelPriority._meta.db_table

_COLUMNS = ", ".join(f"n_{g.lower()}" for g in GRADES)


def _pg_sums(rows: str) -> str:
    """Per-clip counts of the votes in transition table ``rows``, in clip order."""
    columns = ", ".join(
        f"count(*) FILTER (WHERE grade = '{g}') AS n_{g.lower()}" for g in GRADES
    )
    return (
        f"SELECT clip_id, {columns}, count(*) AS n_votes FROM {rows} "
        "GROUP BY clip_id ORDER BY clip_id"
    )


_PG_ADD = f"""
    INSERT INTO {TABLE} AS d (clip_id, {_COLUMNS}, n_votes)
    {_pg_sums("new_votes")}
    ON CONFLICT (clip_id) DO UPDATE SET
        n_a = d.n_a + EXCLUDED.n_a, n_b = d.n_b + EXCLUDED.n_b,
        n_c = d.n_c + EXCLUDED.n_c, n_d = d.n_d + EXCLUDED.n_d,
        n_e = d.n_e + EXCLUDED.n_e, n_votes = d.n_votes + EXCLUDED.n_votes;
"""
_PG_REMOVE = f"""
    UPDATE {TABLE} AS d SET
        n_a = d.n_a - s.n_a, n_b = d.n_b - s.n_b, n_c = d.n_c - s.n_c,
        n_d = d.n_d - s.n_d, n_e = d.n_e - s.n_e, n_votes = d.n_votes - s.n_votes
    FROM ({_pg_sums("old_votes")}) AS s
    WHERE d.clip_id = s.clip_id;
"""

# Statement-level triggers with transition tables: a bulk insert of millions of
# votes updates each clip's row once, not once per vote (row-level triggers took
# 7 minutes for 4M votes). Rows are touched in clip order so concurrent writers
# cannot deadlock on them.
_PG_SQL = f"""
CREATE OR REPLACE FUNCTION annotation_clip_distribution_init() RETURNS trigger AS $$
BEGIN
    INSERT INTO {TABLE} (clip_id, {_COLUMNS}, n_votes)
    SELECT id, 0, 0, 0, 0, 0, 0 FROM new_clips ORDER BY id
    ON CONFLICT (clip_id) DO NOTHING;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS annotation_clip_distribution_init ON {CLIP};
CREATE TRIGGER annotation_clip_distribution_init AFTER INSERT ON {CLIP}
    REFERENCING NEW TABLE AS new_clips
    FOR EACH STATEMENT EXECUTE FUNCTION annotation_clip_distribution_init();

CREATE OR REPLACE FUNCTION annotation_vote_count_add() RETURNS trigger AS $$
BEGIN {_PG_ADD} RETURN NULL; END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION annotation_vote_count_remove() RETURNS trigger AS $$
BEGIN {_PG_REMOVE} RETURN NULL; END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION annotation_vote_count_change() RETURNS trigger AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM old_votes o JOIN new_votes n ON n.id = o.id
        WHERE n.grade <> o.grade OR n.clip_id <> o.clip_id
    ) THEN
        {_PG_REMOVE}
        {_PG_ADD}
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS annotation_vote_count ON {VOTE};
DROP TRIGGER IF EXISTS annotation_vote_count_insert ON {VOTE};
DROP TRIGGER IF EXISTS annotation_vote_count_delete ON {VOTE};
DROP TRIGGER IF EXISTS annotation_vote_count_update ON {VOTE};
CREATE TRIGGER annotation_vote_count_insert AFTER INSERT ON {VOTE}
    REFERENCING NEW TABLE AS new_votes
    FOR EACH STATEMENT EXECUTE FUNCTION annotation_vote_count_add();
CREATE TRIGGER annotation_vote_count_delete AFTER DELETE ON {VOTE}
    REFERENCING OLD TABLE AS old_votes
    FOR EACH STATEMENT EXECUTE FUNCTION annotation_vote_count_remove();
CREATE TRIGGER annotation_vote_count_update AFTER UPDATE ON {VOTE}
    REFERENCING OLD TABLE AS old_votes NEW TABLE AS new_votes
    FOR EACH STATEMENT EXECUTE FUNCTION annotation_vote_count_change();
"""


def _sqlite_flags(row: str) -> str:
    return ", ".join(f"({row}.grade = '{g}')" for g in GRADES)


_SQLITE_DECREMENT = f"""
    UPDATE {TABLE} SET
        n_a = n_a - (OLD.grade = 'A'), n_b = n_b - (OLD.grade = 'B'),
        n_c = n_c - (OLD.grade = 'C'), n_d = n_d - (OLD.grade = 'D'),
        n_e = n_e - (OLD.grade = 'E'), n_votes = n_votes - 1
    WHERE clip_id = OLD.clip_id;
"""
_SQLITE_INCREMENT = f"""
    INSERT INTO {TABLE} (clip_id, {_COLUMNS}, n_votes)
    VALUES (NEW.clip_id, {_sqlite_flags("NEW")}, 1)
    ON CONFLICT (clip_id) DO UPDATE SET
        n_a = n_a + excluded.n_a, n_b = n_b + excluded.n_b,
        n_c = n_c + excluded.n_c, n_d = n_d + excluded.n_d,
        n_e = n_e + excluded.n_e, n_votes = n_votes + 1;
"""
_SQLITE_STATEMENTS = [
    f"""CREATE TRIGGER IF NOT EXISTS annotation_clip_distribution_init
    AFTER INSERT ON {CLIP} BEGIN
    INSERT OR IGNORE INTO {TABLE} (clip_id, {_COLUMNS}, n_votes)
    VALUES (NEW.id, 0, 0, 0, 0, 0, 0);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS annotation_vote_count_insert
    AFTER INSERT ON {VOTE} BEGIN {_SQLITE_INCREMENT} END""",
    f"""CREATE TRIGGER IF NOT EXISTS annotation_vote_count_delete
    AFTER DELETE ON {VOTE} BEGIN {_SQLITE_DECREMENT} END""",
    f"""CREATE TRIGGER IF NOT EXISTS annotation_vote_count_update
    AFTER UPDATE OF grade, clip_id ON {VOTE}
    WHEN NEW.grade IS NOT OLD.grade OR NEW.clip_id IS NOT OLD.clip_id
    BEGIN {_SQLITE_DECREMENT} {_SQLITE_INCREMENT} END""",
]

_RECOUNT_SQL = f"""
UPDATE {TABLE} SET
    n_a = (SELECT COUNT(*) FROM {VOTE} v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'A'),
    n_b = (SELECT COUNT(*) FROM {VOTE} v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'B'),
    n_c = (SELECT COUNT(*) FROM {VOTE} v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'C'),
    n_d = (SELECT COUNT(*) FROM {VOTE} v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'D'),
    n_e = (SELECT COUNT(*) FROM {VOTE} v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'E'),
    n_votes = (SELECT COUNT(*) FROM {VOTE} v
               WHERE v.clip_id = {TABLE}.clip_id)
"""
_MISSING_ROWS_SQL = f"""
INSERT INTO {TABLE} (clip_id, {_COLUMNS}, n_votes)
SELECT c.id, 0, 0, 0, 0, 0, 0 FROM {CLIP} c
WHERE NOT EXISTS (SELECT 1 FROM {TABLE} d WHERE d.clip_id = c.id)
"""


def install(connection) -> None:
    """Create (or replace) the triggers on ``connection``'s database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_SQL)
        elif connection.vendor == "sqlite":
            for statement in _SQLITE_STATEMENTS:
                cursor.execute(statement)
        else:
            raise NotImplementedError(
                f"SpermGrade supports PostgreSQL and SQLite, not {connection.vendor}."
            )


def recount(connection) -> None:
    """Rebuild every clip's counts from the votes (repair after manual surgery)."""
    with connection.cursor() as cursor:
        cursor.execute(_MISSING_ROWS_SQL)
        cursor.execute(_RECOUNT_SQL)


# --- hot queries ---------------------------------------------------------------------
# Each is one indexed statement on PostgreSQL and SQLite alike; the ORM spelling of
# the queue ranking repeats a correlated count per row, and building 100,000 model
# rows for the distributions costs more than the query.

# A clip experts may be given: active and approved by review.
GRADABLE = "c.is_active AND c.review = 'approved'"

_QUEUE_COLUMNS = (
    "c.id, c.n_frames, c.fps, c.size_px, c.track, c.is_synthetic, c.is_active"
)

# Live leases are counted once per clip in a grouped subquery. With the vote budget
# on, {budget} is a CTE of (n, lo, hi) rows (dispersion.settled_ranges): a clip with
# n votes is settled, and no longer offered, unless one of its grade counts lies in
# lo..hi; and {order} ranks the least certain first by the summed posterior
# variance of the grade shares, Σ_c (1 + n_c)(4 + n - n_c) / ((5 + n)²(6 + n)).
_FRESH_SQL = f"""
{{budget}}
SELECT {_QUEUE_COLUMNS}
FROM {CLIP} c
LEFT JOIN {TABLE} d ON d.clip_id = c.id
LEFT JOIN (
    SELECT clip_id, COUNT(*) AS n FROM {LEASE}
    WHERE expires_at > %(now)s GROUP BY clip_id
) l ON l.clip_id = c.id
{{budget_join}}
{{priority_join}}
WHERE {GRADABLE}
  AND NOT EXISTS (
    SELECT 1 FROM {VOTE} v WHERE v.clip_id = c.id AND v.expert_id = %(expert)s
  )
  AND NOT EXISTS (
    SELECT 1 FROM {LEASE} m
    WHERE m.clip_id = c.id AND m.expert_id = %(expert)s AND m.expires_at > %(now)s
  )
  {{exclude}}
  {{budget_where}}
ORDER BY
  CASE WHEN COALESCE(d.n_votes, 0) + COALESCE(l.n, 0) >= %(wanted)s THEN 1 ELSE 0 END,
  {{order}},
  {{shuffle}},
  c.id
LIMIT %(limit)s
"""
_LEAST_LOADED = "COALESCE(d.n_votes, 0) + COALESCE(l.n, 0)"
_N = "COALESCE(d.n_votes, 0)"
_UNCERTAINTY = (
    "("
    + " + ".join(
        f"(1.0 + COALESCE(d.{col}, 0)) * (4.0 + {_N} - COALESCE(d.{col}, 0))"
        for col in _COLUMNS.split(", ")
    )
    + f") / ((5.0 + {_N}) * (5.0 + {_N}) * (6.0 + {_N})) DESC"
)


def _budget_parts(budget: list[tuple[int, int, int]] | None, min_votes: int):
    if not budget:
        return "", "", ""
    rows = ", ".join(f"({int(n)}, {int(lo)}, {int(hi)})" for n, lo, hi in budget)
    wide = " OR ".join(
        f"COALESCE(d.{col}, 0) BETWEEN b.lo AND b.hi" for col in _COLUMNS.split(", ")
    )
    return (
        f"WITH budget(n, lo, hi) AS (VALUES {rows})",
        f"LEFT JOIN budget b ON b.n = {_N}",
        f"AND NOT ({_N} >= {int(min_votes)} AND b.n IS NOT NULL AND NOT ({wide}))",
    )


_HELD_SQL = f"""
SELECT {_QUEUE_COLUMNS}, l.is_repeat
FROM {LEASE} l JOIN {CLIP} c ON c.id = l.clip_id
WHERE l.expert_id = %(expert)s AND l.holder = %(holder)s AND l.expires_at > %(now)s
  AND {GRADABLE}
  -- A next-clip request that crosses a vote can re-lease the clip just graded;
  -- such a lease is never handed out again (it simply expires).
  AND NOT EXISTS (
    SELECT 1 FROM {VOTE} v
    WHERE v.clip_id = l.clip_id AND v.expert_id = l.expert_id AND NOT l.is_repeat)
  AND NOT EXISTS (
    SELECT 1 FROM {REPEAT} r
    WHERE r.clip_id = l.clip_id AND r.expert_id = l.expert_id AND l.is_repeat)
ORDER BY l.created_at, l.id
LIMIT %(limit)s
"""

# Clips still open to the expert = gradable clips − the expert's votes on gradable
# clips (one vote per clip and expert): a count over the clips plus a walk of the
# expert's own votes, instead of probing the votes once per clip (the anti-join
# cost a lookup per clip on every next-clip and vote request).
_PROGRESS_SQL = f"""
SELECT
  (SELECT COUNT(*) FROM {VOTE} WHERE expert_id = %(expert)s),
  (SELECT COUNT(*) FROM {REPEAT} WHERE expert_id = %(expert)s),
  (SELECT COUNT(*) FROM {CLIP} c WHERE {GRADABLE})
  - (SELECT COUNT(*) FROM {VOTE} v JOIN {CLIP} c ON c.id = v.clip_id
     WHERE v.expert_id = %(expert)s AND {GRADABLE}){{elsewhere}}
"""
_ELSEWHERE_SQL = f""",
  (SELECT COUNT(*) FROM {LEASE} l JOIN {CLIP} c ON c.id = l.clip_id
   WHERE l.expert_id = %(expert)s AND l.expires_at > %(now)s
     AND l.holder <> %(holder)s AND {GRADABLE}
     AND (l.is_repeat OR NOT EXISTS (
       SELECT 1 FROM {VOTE} v
       WHERE v.clip_id = l.clip_id AND v.expert_id = l.expert_id)))"""
_PROGRESS_ONLY_SQL = _PROGRESS_SQL.format(elsewhere="")
_PROGRESS_ELSEWHERE_SQL = _PROGRESS_SQL.format(elsewhere=_ELSEWHERE_SQL)

_DISTRIBUTION_SQL = f"SELECT clip_id, {_COLUMNS} FROM {TABLE}"

_LEASE_TAKE_SQL = (
    f"DELETE FROM {LEASE} WHERE expert_id = %s AND clip_id = %s RETURNING is_repeat"
)


def queue_fresh_rows(
    connection,
    *,
    expert_id: int,
    now,
    wanted: int,
    shuffle: tuple[int, int, int],
    limit: int,
    exclude: set[int],
    budget: list[tuple[int, int, int]] | None = None,
    budget_min_votes: int = 0,
    least_certain_first: bool = False,
    model_priority: str = "off",
) -> list[tuple]:
    """Clips the expert neither graded nor holds: short of ``wanted`` votes
    (counting live leases) first, then least-loaded first (or, with
    ``least_certain_first``, the least certain distribution first), then the
    per-expert order. With ``budget`` (``dispersion.settled_ranges``) settled clips
    are left out. With ``least_certain_first`` and ``model_priority``
    (``disagreement`` or ``entropy``), the active model's figure for the clip
    (``ClipModelPriority``) ranks first. Rows hold (id, n_frames, fps, size_px,
    track, is_synthetic, is_active)."""
    params = {
        "now": connection.ops.adapt_datetimefield_value(now),
        "expert": expert_id,
        "wanted": wanted,
        "limit": limit,
        **shuffle_params(shuffle),
    }
    excluded = ""
    if exclude and connection.vendor == "postgresql":
        # An array parameter keeps one statement text (kept prepared).
        excluded = "AND c.id <> ALL(%(exclude)s)"
        params["exclude"] = sorted(int(i) for i in exclude)
    elif exclude:
        ids = ", ".join(str(int(i)) for i in sorted(exclude))
        excluded = f"AND c.id NOT IN ({ids})"
    cte, join, where = _budget_parts(budget, budget_min_votes)
    order = _UNCERTAINTY if least_certain_first else _LEAST_LOADED
    priority_join = ""
    if least_certain_first and model_priority in ("disagreement", "entropy"):
        priority_join = f"LEFT JOIN {PRIORITY} p ON p.clip_id = c.id"
        order = f"COALESCE(p.{model_priority}, 0) DESC, {order}"
    statement = _FRESH_SQL.format(
        budget=cte,
        budget_join=join,
        priority_join=priority_join,
        budget_where=where,
        exclude=excluded,
        order=order,
        shuffle=shuffle_key_sql_params("c.id"),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def queue_held_rows(
    connection, *, expert_id: int, holder: str, now, limit: int
) -> list[tuple]:
    """The clips one tab holds under live leases, in the order they were handed
    out; rows as in ``queue_fresh_rows`` plus ``is_repeat``."""
    params = {
        "expert": expert_id,
        "holder": holder,
        "now": connection.ops.adapt_datetimefield_value(now),
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_HELD_SQL, params)
        return cursor.fetchall()


def expert_progress_counts(
    connection, *, expert_id: int, holder: str | None = "", now=None
) -> tuple[int, int, int, int | None]:
    """(votes cast, repeat votes cast, gradable clips the expert has not graded,
    live leases of the expert held by other tabs than ``holder``); the last is
    None, and not counted, when ``holder`` is None."""
    from django.utils import timezone

    if holder is None:
        with connection.cursor() as cursor:
            cursor.execute(_PROGRESS_ONLY_SQL, {"expert": expert_id})
            votes, repeats, open_clips = cursor.fetchone()
        return int(votes), int(repeats), int(open_clips), None
    params = {
        "expert": expert_id,
        "holder": holder,
        "now": connection.ops.adapt_datetimefield_value(now or timezone.now()),
    }
    with connection.cursor() as cursor:
        cursor.execute(_PROGRESS_ELSEWHERE_SQL, params)
        votes, repeats, open_clips, elsewhere = cursor.fetchone()
    return int(votes), int(repeats), int(open_clips), int(elsewhere)


def lease_take(connection, *, expert_id: int, clip_id: int) -> bool:
    """Delete the expert's lease on the clip; True if it was a hidden repeat."""
    with connection.cursor() as cursor:
        cursor.execute(_LEASE_TAKE_SQL, [expert_id, clip_id])
        row = cursor.fetchone()
    return bool(row and row[0])


_VOTE_CONTEXT_SQL = f"""
SELECT c.id, c.is_active, c.review, l.expires_at, l.is_repeat
FROM {CLIP} c
LEFT JOIN {LEASE} l ON l.clip_id = c.id AND l.expert_id = %(expert)s
WHERE c.id = %(clip)s
"""


def vote_context_row(connection, *, expert_id: int, clip_id: int) -> tuple | None:
    """(clip id, is_active, review, lease expires_at, lease is_repeat) for a vote
    about to be cast, the lease's two None when the expert holds none; None when
    the clip does not exist. One statement for what the vote checks first."""
    with connection.cursor() as cursor:
        cursor.execute(_VOTE_CONTEXT_SQL, {"expert": expert_id, "clip": clip_id})
        return cursor.fetchone()


def distribution_table(connection, clip_ids: list[int] | None) -> list[tuple]:
    """Rows (clip_id, n_a .. n_e) in clip order, for all or some clips."""
    with connection.cursor() as cursor:
        if clip_ids is None:
            cursor.execute(_DISTRIBUTION_SQL + " ORDER BY clip_id")
            return cursor.fetchall()
        if connection.vendor == "postgresql":
            # One array parameter instead of 100,000 placeholders.
            ids = "{" + ",".join(str(int(i)) for i in clip_ids) + "}"
            cursor.execute(
                _DISTRIBUTION_SQL
                + " WHERE clip_id = ANY(%s::bigint[]) ORDER BY clip_id",
                [ids],
            )
            return cursor.fetchall()
        rows = []  # SQLite limits the number of placeholders per statement
        ids = sorted({int(i) for i in clip_ids})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"{_DISTRIBUTION_SQL} WHERE clip_id IN ({marks}) ORDER BY clip_id",
                chunk,
            )
            rows.extend(cursor.fetchall())
        return rows


# --- users with their roles ------------------------------------------------------
# Every API request loads its user by token and checks a role; one statement run
# through Manager.raw() (which converts the columns as the ORM does) replaces
# building and compiling the annotated ORM query on each request.


@functools.cache
def _user_with_roles_sql(by: str) -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from annotation.roles import ROLE_GROUPS, ROLE_MASK_ATTR

    user = get_user_model()._meta
    through = user.get_field("groups").remote_field.through._meta
    user_col = through.get_field("user").column
    group_col = through.get_field("group").column
    group = Group._meta
    # One subquery sums a bit per role group the user is in (a membership is
    # unique), where one EXISTS per role took the planner three times as long.
    bits = " ".join(
        f"WHEN '{name}' THEN {1 << index}" for index, name in enumerate(ROLE_GROUPS)
    )
    mask = (
        f"(SELECT COALESCE(SUM(CASE g.name {bits} ELSE 0 END), 0) "
        f"FROM {through.db_table} ug JOIN {group.db_table} g "
        f"ON g.{group.pk.column} = ug.{group_col} "
        f"WHERE ug.{user_col} = u.{user.pk.column}) AS {ROLE_MASK_ATTR}"
    )
    if by == "token":
        token = Token._meta
        return (
            f"SELECT u.*, {mask} FROM {token.db_table} t JOIN {user.db_table} u "
            f"ON u.{user.pk.column} = t.{token.get_field('user').column} "
            f"WHERE t.{token.pk.column} = %s"
        )
    return f"SELECT u.*, {mask} FROM {user.db_table} u WHERE u.{user.pk.column} = %s"


def user_with_roles(*, token_key: str | None = None, user_id=None):
    """The user (by API token key or by id) with the bit mask of its role groups
    (``ROLE_MASK_ATTR``, bit i for ``ROLE_GROUPS[i]``), or None; one statement."""
    from django.contrib.auth import get_user_model

    by = "token" if token_key is not None else "id"
    rows = get_user_model().objects.raw(
        _user_with_roles_sql(by), [token_key if by == "token" else user_id]
    )
    return next(iter(rows), None)


# --- the vote, in one statement (PostgreSQL) -------------------------------------
# The grading target (vote p95 ≤ 30 ms at 40 experts) was missed with the ORM path
# on PostgreSQL (benchmarks/web_load.py: see the README); its five round trips
# (BEGIN, lease, vote, history, COMMIT) become one here. The statement is atomic,
# so a duplicate vote (unique constraint) undoes the lease deletion too. SQLite has
# no data-modifying WITH and keeps the ORM path; the tests run on both.

_VOTE_INSERT_SQL = f"""
WITH lease AS (
  DELETE FROM {LEASE}
  WHERE expert_id = %(expert)s AND clip_id = %(clip)s RETURNING is_repeat
), kind AS (
  SELECT COALESCE(bool_or(is_repeat), false) AS is_repeat FROM lease
), v AS (
  INSERT INTO {VOTE}
    (expert_id, clip_id, grade, created_at, updated_at, seconds_spent, is_final)
  SELECT %(expert)s, %(clip)s, %(grade)s, %(now)s, %(now)s, %(seconds)s, %(final)s
  FROM kind WHERE NOT kind.is_repeat
  RETURNING id
), r AS (
  INSERT INTO {REPEAT}
    (expert_id, clip_id, grade, created_at, updated_at, seconds_spent, is_final)
  SELECT %(expert)s, %(clip)s, %(grade)s, %(now)s, %(now)s, %(seconds)s, %(final)s
  FROM kind WHERE kind.is_repeat
  RETURNING id
), h AS (
  INSERT INTO {HISTORY}
    (vote_id, repeat_vote_id, expert_id, clip_id, action, grade, previous_grade,
     is_repeat, at)
  SELECT v.id, NULL, %(expert)s, %(clip)s, %(action)s, %(grade)s, '', false, %(now)s
  FROM v
  UNION ALL
  SELECT NULL, r.id, %(expert)s, %(clip)s, %(action)s, %(grade)s, '', true, %(now)s
  FROM r
)
SELECT (SELECT id FROM v), (SELECT id FROM r)
"""


def vote_insert_one_statement(
    connection,
    *,
    expert_id: int,
    clip_id: int,
    grade: str,
    seconds: float,
    now,
    final: bool = False,
) -> tuple[int | None, int | None]:
    """PostgreSQL: take the lease, insert the vote (or the hidden repeat's vote) and
    its history row; returns (vote id, repeat vote id), one of them None."""
    params = {
        "expert": expert_id,
        "clip": clip_id,
        "grade": grade,
        "now": now,
        "seconds": seconds,
        "final": final,
        "action": VoteHistory.Action.CREATE.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_VOTE_INSERT_SQL, params)
        return cursor.fetchone()
