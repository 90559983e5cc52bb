"""Database guards of the registry: a prediction, once written, never changes.

Installed by a migration (and after every migrate, as SQLite drops triggers when
a migration rebuilds a table). Deleting is left to PROTECT foreign keys and the
admin (which offers no delete).
"""

from __future__ import annotations

MESSAGE = "predictions are immutable: write a new model version instead"

_POSTGRES = [
    f"""
    CREATE OR REPLACE FUNCTION registry_prediction_immutable() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}';
    END;
    $$ LANGUAGE plpgsql;
    """,
    "DROP TRIGGER IF EXISTS registry_prediction_no_update ON registry_prediction;",
    """
    CREATE TRIGGER registry_prediction_no_update BEFORE UPDATE ON registry_prediction
    FOR EACH ROW EXECUTE FUNCTION registry_prediction_immutable();
    """,
]

_SQLITE = [
    "DROP TRIGGER IF EXISTS registry_prediction_no_update;",
    f"""
    CREATE TRIGGER registry_prediction_no_update BEFORE UPDATE ON registry_prediction
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
]


def install(connection) -> None:
    statements = _POSTGRES if connection.vendor == "postgresql" else _SQLITE
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
