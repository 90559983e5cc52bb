"""Writes: the per-clip counts, rebuilt from the votes (after manual surgery)."""

from __future__ import annotations

from django.db import connection, transaction

from annotation import sql


def distribution_recount() -> None:
    """Rebuild every clip's counts from the votes (after manual database surgery)."""
    with transaction.atomic():
        sql.recount(connection)
