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


def clip_priorities_refresh(*, version: ModelVersion) -> int:
    """The queue's active-allocation figures from ``version``'s predictions and
    the panel's votes so far: model-panel EMD (0 for a clip without votes) and the
    prediction's normalised entropy. Only while the queue reads them (the vote
    budget on with VOTE_BUDGET_MODEL_PRIORITY): otherwise nothing is written, and
    the first refresh after it is switched on writes them all. Returns the rows
    written or deleted (unchanged ones are left alone)."""
    import numpy as np
    from django.conf import settings

    from annotation.selectors import vote_budget

    if settings.VOTE_BUDGET_MODEL_PRIORITY == "off" or vote_budget() is None:
        return 0

    from annotation.models import ClipDistribution
    from annotation.services import clip_model_priorities_replace
    from modeling.metrics import emd_per_clip

    rows = list(
        Prediction.objects.filter(version=version).values_list(
            "clip_id", "p_a", "p_b", "p_c", "p_d", "p_e"
        )
    )

    def current() -> bool:  # asked under the lock: a newer activation wins
        return ModelVersion.objects.filter(pk=version.pk, is_active=True).exists()

    if not rows:
        return clip_model_priorities_replace(
            rows=[], version_number=version.number, still_current=current
        )
    counts = {
        d.clip_id: [d.n_a, d.n_b, d.n_c, d.n_d, d.n_e]
        for d in ClipDistribution.objects.filter(clip_id__in=[r[0] for r in rows])
    }
    pred = np.array([r[1:] for r in rows], dtype=float)
    panel = np.array([counts.get(r[0], [0] * 5) for r in rows], dtype=float)
    voted = panel.sum(axis=1) > 0
    shares = panel / np.maximum(panel.sum(axis=1, keepdims=True), 1)
    disagreement = np.where(
        voted, emd_per_clip(pred, np.where(voted[:, None], shares, pred)), 0.0
    )
    clipped = np.clip(pred, 1e-12, 1.0)
    entropy = -(pred * np.log(clipped)).sum(axis=1) / np.log(5)
    return clip_model_priorities_replace(
        rows=[
            (r[0], float(d), float(h))
            for r, d, h in zip(rows, disagreement, entropy, strict=True)
        ],
        version_number=version.number,
        still_current=current,
    )
