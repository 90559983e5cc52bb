"""Database triggers that keep ``annotation_clipdistribution`` equal to the votes.

Counting happens inside the database, in the same transaction as the vote, so the
per-clip counts cannot drift from ``annotation_vote`` whatever writes the votes (the
API, the admin, bulk inserts, raw SQL). Reading 100,000 distributions is then a scan
of 100,000 small rows instead of an aggregation over millions of votes.

``install`` is idempotent. It runs in migration 0002 and again after every
``migrate`` (``apps.py``), because SQLite drops a table's triggers when a later
migration rebuilds that table.
"""

from __future__ import annotations

GRADES = "ABCDE"
TABLE = "annotation_clipdistribution"

_COLUMNS = ", ".join(f"n_{g.lower()}" for g in GRADES)


def _pg_flags(row: str) -> str:
    return ", ".join(f"({row}.grade = '{g}')::int" for g in GRADES)


_PG_SQL = f"""
CREATE OR REPLACE FUNCTION annotation_clip_distribution_init() RETURNS trigger AS $$
BEGIN
    INSERT INTO {TABLE} (clip_id, {_COLUMNS}, n_votes)
    VALUES (NEW.id, 0, 0, 0, 0, 0, 0) ON CONFLICT (clip_id) DO NOTHING;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS annotation_clip_distribution_init ON annotation_clip;
CREATE TRIGGER annotation_clip_distribution_init AFTER INSERT ON annotation_clip
    FOR EACH ROW EXECUTE FUNCTION annotation_clip_distribution_init();

CREATE OR REPLACE FUNCTION annotation_vote_count() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.grade = OLD.grade AND NEW.clip_id = OLD.clip_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE {TABLE} SET
            n_a = n_a - (OLD.grade = 'A')::int, n_b = n_b - (OLD.grade = 'B')::int,
            n_c = n_c - (OLD.grade = 'C')::int, n_d = n_d - (OLD.grade = 'D')::int,
            n_e = n_e - (OLD.grade = 'E')::int, n_votes = n_votes - 1
        WHERE clip_id = OLD.clip_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO {TABLE} AS d (clip_id, {_COLUMNS}, n_votes)
        VALUES (NEW.clip_id, {_pg_flags("NEW")}, 1)
        ON CONFLICT (clip_id) DO UPDATE SET
            n_a = d.n_a + EXCLUDED.n_a, n_b = d.n_b + EXCLUDED.n_b,
            n_c = d.n_c + EXCLUDED.n_c, n_d = d.n_d + EXCLUDED.n_d,
            n_e = d.n_e + EXCLUDED.n_e, n_votes = d.n_votes + 1;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS annotation_vote_count ON annotation_vote;
CREATE TRIGGER annotation_vote_count AFTER INSERT OR UPDATE OR DELETE
    ON annotation_vote FOR EACH ROW EXECUTE FUNCTION annotation_vote_count();
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
    AFTER INSERT ON annotation_clip BEGIN
    INSERT OR IGNORE INTO {TABLE} (clip_id, {_COLUMNS}, n_votes)
    VALUES (NEW.id, 0, 0, 0, 0, 0, 0);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS annotation_vote_count_insert
    AFTER INSERT ON annotation_vote BEGIN {_SQLITE_INCREMENT} END""",
    f"""CREATE TRIGGER IF NOT EXISTS annotation_vote_count_delete
    AFTER DELETE ON annotation_vote BEGIN {_SQLITE_DECREMENT} END""",
    f"""CREATE TRIGGER IF NOT EXISTS annotation_vote_count_update
    AFTER UPDATE OF grade, clip_id ON annotation_vote
    WHEN NEW.grade IS NOT OLD.grade OR NEW.clip_id IS NOT OLD.clip_id
    BEGIN {_SQLITE_DECREMENT} {_SQLITE_INCREMENT} END""",
]

_RECOUNT_SQL = f"""
UPDATE {TABLE} SET
    n_a = (SELECT COUNT(*) FROM annotation_vote v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'A'),
    n_b = (SELECT COUNT(*) FROM annotation_vote v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'B'),
    n_c = (SELECT COUNT(*) FROM annotation_vote v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'C'),
    n_d = (SELECT COUNT(*) FROM annotation_vote v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'D'),
    n_e = (SELECT COUNT(*) FROM annotation_vote v
           WHERE v.clip_id = {TABLE}.clip_id AND v.grade = 'E'),
    n_votes = (SELECT COUNT(*) FROM annotation_vote v
               WHERE v.clip_id = {TABLE}.clip_id)
"""
_MISSING_ROWS_SQL = f"""
INSERT INTO {TABLE} (clip_id, {_COLUMNS}, n_votes)
SELECT c.id, 0, 0, 0, 0, 0, 0 FROM annotation_clip c
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
