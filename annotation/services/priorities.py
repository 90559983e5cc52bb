"""The active model's per-clip priorities for the queue (written by the registry)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from annotation.db_locks import transaction_lock
from annotation.models import ClipModelPriority


def clip_model_priorities_replace(
    *,
    rows: list[tuple[int, float, float]],
    version_number: int,
    still_current: Callable[[], bool] = lambda: True,
) -> int:
    """Replace every priority with (clip id, disagreement, entropy) rows of one
    model version, in one transaction (the queue never sees a half-written set).
    ``still_current`` is asked under the lock: a refresh that lost a race to a
    newer activation leaves the newer version's rows alone (returns 0)."""
    with transaction.atomic():
        # Two promotions at once would each delete the rows the other is about
        # to insert (a duplicate key): one replacement at a time.
        transaction_lock("annotation.clip-model-priorities")
        if not still_current():
            return 0
        ClipModelPriority.objects.all().delete()
        ClipModelPriority.objects.bulk_create(
            [
                ClipModelPriority(
                    clip_id=clip_id,
                    disagreement=float(disagreement),
                    entropy=float(entropy),
                    version_number=version_number,
                )
                for clip_id, disagreement, entropy in rows
            ],
            batch_size=1000,
        )
    return len(rows)
