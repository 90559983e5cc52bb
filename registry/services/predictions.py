"""Predictions: written once per (clip, model version), never changed."""

from __future__ import annotations

from registry.models import ModelVersion, Prediction


def predictions_store(
    *,
    version: ModelVersion,
    rows: list[tuple[int, list[float], int | None]],
    source: str,
) -> int:
    """Insert (clip id, 5 probabilities, fold) rows; existing pairs are kept as
    they are (a re-run of a batch adds nothing). Returns the rows inserted."""
    before = Prediction.objects.filter(version=version).count()
    batch = []
    for clip_id, probs, fold in rows:
        if len(probs) != 5:
            raise ValueError(f"clip {clip_id}: expected 5 probabilities, got {probs}")
        batch.append(
            Prediction(
                clip_id=int(clip_id),
                version=version,
                p_a=probs[0],
                p_b=probs[1],
                p_c=probs[2],
                p_d=probs[3],
                p_e=probs[4],
                source=source,
                fold=fold,
            )
        )
    Prediction.objects.bulk_create(batch, batch_size=500, ignore_conflicts=True)
    return Prediction.objects.filter(version=version).count() - before
