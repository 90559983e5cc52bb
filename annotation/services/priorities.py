"""The active model's per-clip priorities for the queue (written by the registry)."""

from __future__ import annotations

from django.db import transaction

from annotation.models import ClipModelPriority


def clip_model_priorities_replace(
    *, rows: list[tuple[int, float, float]], version_number: int
) -> int:
    """Replace every priority with (clip id, disagreement, entropy) rows of one
    model version, in one transaction (the queue never sees a half-written set)."""
    with transaction.atomic():
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
