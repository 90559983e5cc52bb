"""A candidate version against the active one on the same clips (a read).

Each version's cross-validated EMD was measured on its own snapshot, so two such
figures are not comparable. Here both are scored on the candidate's snapshot,
against its vote counts, each with predictions from a model that never trained
on the clip:

- the candidate: its out-of-fold prediction (the fold model that held the clip,
  and its patient, out);
- the active version: its out-of-fold prediction when the clip was in its own
  snapshot, its final model's prediction when the clip was outside it (the final
  model trained on its snapshot only).

Clips the active version has no such prediction for are left out and counted.
The per-clip differences (candidate minus active) are judged by a bootstrap over
patients (``modeling.paired``): clips of one patient are alike.

Why not re-train the active version's configuration on the candidate's folds?
That doubles the training of every run, and scores a re-fitted stand-in, not the
model that is serving. The predictions compared here are already stored. One
asymmetry remains: the active version's final model may have trained on other
clips of a patient whose new clips it predicts, while the candidate's fold
models never saw the patient; it can only favour the active version, so a
promotion it allows is not made easier.
"""

from __future__ import annotations

import numpy as np

from modeling.manifest import ManifestError, manifest_read
from modeling.paired import paired_emd
from registry import storage
from registry.models import ModelVersion, Prediction

N_BOOT = 2000
SEED = 0
# Below this many patients a bootstrap interval says little; an admin decides.
MIN_PATIENTS = 5

_PROBS = ("p_a", "p_b", "p_c", "p_d", "p_e")


def _never_trained_on(
    *, version: ModelVersion, clip_ids: set[int], sources: set[str]
) -> dict[int, tuple[list[float], str]]:
    """{clip id: (probabilities, source)} of ``version``'s predictions of
    ``clip_ids`` made by a model that never trained on the clip."""
    in_snapshot = set(version.snapshot.clip_ids)
    rows = (
        Prediction.objects.filter(version=version, source__in=sources)
        .values_list("clip_id", "source", *_PROBS)
        .iterator(chunk_size=5000)
    )
    found = {}
    for clip_id, source, *probs in rows:
        if clip_id not in clip_ids:
            continue
        # The final model trained on every clip of its snapshot.
        if source == Prediction.Source.FINAL and clip_id in in_snapshot:
            continue
        found[clip_id] = (probs, source)
    return found


def version_paired_comparison(*, candidate: ModelVersion, active: ModelVersion) -> dict:
    """``candidate`` and ``active`` scored on the candidate's snapshot.

    Returns a JSON-ready dict: which versions and snapshot, ``n_snapshot_clips``,
    ``n_left_out`` (clips without a prediction from the active version that it
    never trained on, ``n_without_active``, or, never expected, without the
    candidate's out-of-fold one, ``n_without_candidate``), ``active_sources``
    (how many of the active version's paired predictions are out-of-fold and
    final), and the figures of
    ``modeling.paired.paired_emd`` (``n_clips``, ``n_patients``, ``delta``,
    ``low``, ``high``, ``verdict``, ...). ``problem`` says why there are no
    figures when there are none.
    """
    snapshot = candidate.snapshot
    evidence = {
        "candidate": candidate.number,
        "active": active.number,
        "active_id": active.pk,
        "snapshot_sha256": snapshot.sha256,
        "min_patients": MIN_PATIENTS,
    }
    try:
        records = manifest_read(storage.absolute(snapshot.path))
    except (ManifestError, OSError) as exc:
        problem = f"the manifest of snapshot {snapshot.sha256[:12]} cannot be read"
        return evidence | {"problem": f"{problem} ({type(exc).__name__})"}
    clip_ids = {int(r.clip_id) for r in records}
    mine = _never_trained_on(
        version=candidate, clip_ids=clip_ids, sources={Prediction.Source.OUT_OF_FOLD}
    )
    theirs = _never_trained_on(
        version=active, clip_ids=clip_ids, sources=set(Prediction.Source.values)
    )
    paired = [r for r in records if int(r.clip_id) in mine and int(r.clip_id) in theirs]
    evidence |= {
        "n_snapshot_clips": len(records),
        "n_left_out": len(records) - len(paired),
        "n_without_active": sum(1 for c in clip_ids if c not in theirs),
        "n_without_candidate": sum(1 for c in clip_ids if c not in mine),
        "active_sources": {
            source: sum(1 for r in paired if theirs[int(r.clip_id)][1] == source)
            for source in Prediction.Source.values
        },
    }
    if not paired:
        return evidence | {
            "problem": f"no clip of snapshot {snapshot.sha256[:12]} has both "
            f"v{candidate.number}'s out-of-fold prediction and a prediction of "
            f"v{active.number}'s that it did not train on"
        }
    try:
        figures = paired_emd(
            np.array([mine[int(r.clip_id)][0] for r in paired], dtype=float),
            np.array([theirs[int(r.clip_id)][0] for r in paired], dtype=float),
            np.array([r.votes for r in paired], dtype=float),
            patients=[r.patient_id for r in paired],
            n_boot=N_BOOT,
            seed=SEED,
        )
    except ValueError as exc:  # e.g. a stored prediction of all zeros
        return evidence | {"problem": f"the predictions cannot be scored: {exc}"}
    return evidence | figures


def paired_comparisons_cached(
    *, candidates: list[ModelVersion], active: ModelVersion
) -> list[dict]:
    """``version_paired_comparison`` of each candidate with ``active``, for the
    pages: computed once per pair, then read from the cache.

    Everything it reads is written once (the snapshot's manifest, the
    candidate's out-of-fold predictions) except the active version's
    predictions, which grow while it predicts new clips: their count is part of
    the key, so a comparison is recomputed when they change, never served
    stale."""
    from django.core.cache import cache

    if not candidates:
        return []
    n_active = Prediction.objects.filter(version=active).count()
    found = []
    for candidate in candidates:
        # Creation times too: a restored database may number its rows again.
        key = (
            f"registry:paired:{candidate.pk}:{candidate.created_at.isoformat()}:"
            f"{active.pk}:{active.created_at.isoformat()}:{n_active}:{N_BOOT}:{SEED}"
        )
        evidence = cache.get(key)
        if evidence is None:
            evidence = version_paired_comparison(candidate=candidate, active=active)
            cache.set(key, evidence, timeout=7 * 24 * 3600)
        found.append(evidence)
    return found


def _signed(value: float) -> str:
    return f"{value:+.4f}".replace("-", "−")


def comparison_sentence(evidence: dict) -> str:
    """What the paired comparison found, in one sentence (no decision)."""
    active = f"v{evidence['active']}"
    if "problem" in evidence:
        return f"no paired comparison with {active}: {evidence['problem']}"
    gaps = []
    if evidence["n_without_active"]:
        gaps.append(
            f"{evidence['n_without_active']} without a prediction from {active}"
        )
    if evidence["n_without_candidate"]:
        gaps.append(f"{evidence['n_without_candidate']} without an out-of-fold one")
    left_out = f"; {evidence['n_left_out']} left out: {', '.join(gaps)}" if gaps else ""
    return (
        f"paired with {active} on {evidence['n_clips']} clips of snapshot "
        f"{evidence['snapshot_sha256'][:12]} ({evidence['n_patients']} patients"
        f"{left_out}): EMD difference {_signed(evidence['delta'])} "
        f"({round(evidence['level'] * 100)} % interval {_signed(evidence['low'])} … "
        f"{_signed(evidence['high'])})"
    )


def comparison_verdict(evidence: dict) -> tuple[bool, str]:
    """(clearly better?, in words): clearly better only when the whole interval
    of the paired difference lies below zero, over enough patients."""
    if "problem" in evidence:
        return False, "no paired comparison"
    if evidence["n_patients"] < MIN_PATIENTS:
        return False, f"too few patients for an interval (at least {MIN_PATIENTS})"
    if evidence["high"] < 0:
        return True, "better"
    if evidence["low"] > 0:
        return False, "worse"
    return False, "not clearly better"
