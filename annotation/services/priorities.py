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
    """Make the priorities equal (clip id, disagreement, entropy) rows of one model
    version, in one transaction (the queue never sees a half-written set): rows
    whose figures or version changed are upserted, clips no longer predicted
    deleted, unchanged rows left alone. ``still_current`` is asked under the lock:
    a refresh that lost a race to a newer activation leaves the newer version's
    rows alone (returns 0). Returns the rows written or deleted."""
    with transaction.atomic():
        # Two promotions at once would each write rows the other is about to
        # write or delete (a duplicate key): one replacement at a time.
        transaction_lock("annotation.clip-model-priorities")
        if not still_current():
            return 0
        stored = {
            clip_id: (disagreement, entropy, number)
            for clip_id, disagreement, entropy, number in (
                ClipModelPriority.objects.values_list(
                    "clip_id", "disagreement", "entropy", "version_number"
                )
            )
        }
        wanted = {
            int(clip_id): (float(disagreement), float(entropy), version_number)
            for clip_id, disagreement, entropy in rows
        }
        changed = [
            ClipModelPriority(
                clip_id=clip_id,
                disagreement=disagreement,
                entropy=entropy,
                version_number=number,
            )
            for clip_id, (disagreement, entropy, number) in wanted.items()
            if stored.get(clip_id) != (disagreement, entropy, number)
        ]
        gone = [clip_id for clip_id in stored if clip_id not in wanted]
        for offset in range(0, len(gone), 1000):
            ClipModelPriority.objects.filter(
                clip_id__in=gone[offset : offset + 1000]
            ).delete()
        ClipModelPriority.objects.bulk_create(
            changed,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["clip"],
            update_fields=["disagreement", "entropy", "version_number", "updated_at"],
        )
    return len(changed) + len(gone)
