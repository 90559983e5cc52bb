"""Dataset snapshots: the votes at a cutoff frozen into a content-addressed manifest.

The manifest is written by ``modeling.manifest`` into a temporary folder, with each
clip's array hard-linked (not copied), then renamed to
``registry/snapshots/<manifest sha256>/``. The same clips with the same votes give
the same hash, so taking a snapshot twice returns the first one; a folder, once
renamed into place, is never written again.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import services as annotation_services
from annotation.errors import DomainError
from annotation.models import Clip
from modeling.manifest import manifest_sha256, manifest_write
from registry import selectors, storage
from registry.models import Snapshot

logger = logging.getLogger(__name__)


class NothingToSnapshot(DomainError):
    status_code = 409


def _array_problem(path: str) -> str:
    """What is wrong with a clip's .npy (never its server path), or ''."""
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return "is missing"
    except (ValueError, OSError, EOFError) as exc:
        return f"cannot be read ({type(exc).__name__})"
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        return f"is {frames.dtype} {tuple(frames.shape)}, not uint8 (T, H, W, 3)"
    if min(frames.shape[:3]) < 1:
        return "holds no frames"
    return ""


def _rows(*, counts: dict[int, list[int]], min_votes: int) -> list[dict]:
    eligible = [cid for cid, c in counts.items() if sum(c) >= min_votes]
    clips = (
        Clip.objects.filter(pk__in=eligible, is_active=True)
        .exclude(array_file="")
        .select_related("patient")
        .order_by("pk")
    )
    rows = []
    for clip in clips:
        problem = _array_problem(clip.array_file.path)
        if problem:
            # One bad file must not fail every run until someone withdraws it.
            annotation_services.clip_withdraw_broken(
                clip_id=clip.pk, reason=f"its frame array {problem}"
            )
            logger.error("snapshot: clip %s left out: its array %s", clip.pk, problem)
            continue
        row = {
            "clip_id": str(clip.pk),
            "patient_id": storage.patient_pseudonym(clip.patient.code),
            "votes": counts[clip.pk],
            "speed": float(clip.speed),
            "kinematics": clip.kinematics or {},
            "synthetic": clip.is_synthetic,
            "source_array": clip.array_file.path,
            "array": f"clips/{clip.pk}.npy",
        }
        if clip.is_synthetic and clip.latent_quality is not None:
            row["latent_quality"] = clip.latent_quality  # synthetic ground truth
        rows.append(row)
    return rows


def snapshot_create(
    *, cutoff: datetime | None = None, min_votes: int | None = None, user=None
) -> Snapshot:
    """Freeze the active clips with at least ``min_votes`` votes at ``cutoff``
    (default: now, SNAPSHOT_MIN_VOTES). Returns the existing snapshot when the
    votes are the same."""
    cutoff = cutoff or timezone.now()
    min_votes = settings.SNAPSHOT_MIN_VOTES if min_votes is None else min_votes
    counts = selectors.vote_counts_at(cutoff=cutoff)
    rows = _rows(counts=counts, min_votes=min_votes)
    if not rows:
        raise NothingToSnapshot(
            f"No active clip with frames had at least {min_votes} votes at "
            f"{cutoff:%Y-%m-%d %H:%M} UTC; collect more votes or lower "
            "SNAPSHOT_MIN_VOTES."
        )
    fully_voted = sorted(
        int(r["clip_id"]) for r in rows if sum(r["votes"]) >= settings.VOTES_PER_CLIP
    )
    tmp = storage.tmp_dir("snapshot")
    try:
        for row in rows:
            storage.link_or_copy(row.pop("source_array"), tmp / row["array"])
        manifest_write(
            tmp,
            rows=rows,
            meta={
                "source": "SpermGrade panel snapshot",
                "cutoff": cutoff.isoformat(),
                "min_votes": min_votes,
                "synthetic": all(r["synthetic"] for r in rows),
            },
        )

        sha = manifest_sha256(tmp)
        existing = Snapshot.objects.filter(sha256=sha).first()
        if existing is not None:
            return existing
        final = storage.registry_dir("snapshots", sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            os.rename(tmp, final)  # atomic: the folder appears complete or not at all
        try:
            with transaction.atomic():
                return Snapshot.objects.create(
                    sha256=sha,
                    cutoff=cutoff,
                    min_votes=min_votes,
                    n_clips=len(rows),
                    n_votes=sum(sum(r["votes"]) for r in rows),
                    clip_ids=[int(r["clip_id"]) for r in rows],
                    fully_voted_ids=fully_voted,
                    path=storage.relative(final),
                    is_synthetic=all(r["synthetic"] for r in rows),
                    created_by=user,
                )
        except IntegrityError:  # the same snapshot taken at the same moment
            return Snapshot.objects.get(sha256=sha)
    finally:
        storage.remove_tree(tmp)
