"""The bundle's tables (votes, history, distributions, recordings, snapshot and
folds, predictions), each written as a stream of rows.

Rows come in pseudonym order, never in the order of the instance's ids (which
would pair each pseudonym with its id for anyone who knows how ids are given
out), and times are rounded down to EXPORT_TIME_RESOLUTION_SECONDS.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
from django.conf import settings

from annotation import dispersion
from annotation.models import GRADES, Recording, RepeatVote, Vote, VoteHistory
from exports.bundle_snapshot import REBUILD
from exports.pseudonyms import clip_pseudonym, expert_pseudonym, recording_pseudonym
from registry import storage

CHUNK = 5000


def iso_time(value: datetime | None) -> str:
    """ISO 8601, rounded down to the export's time resolution."""
    if not value:
        return ""
    step = settings.EXPORT_TIME_RESOLUTION_SECONDS
    seconds = int(value.timestamp()) // step * step
    return datetime.fromtimestamp(seconds, tz=value.tzinfo).isoformat()


def votes_write(writer, *, clip_ids: set[int]) -> int:
    """votes.csv and crowdkit.csv of the exported clips (``clip_ids``)."""
    header = ["clip", "expert", "grade", "created_at", "updated_at", "seconds_spent"]
    rows = []
    for model, repeat in ((Vote, 0), (RepeatVote, 1)):
        for c, e, g, created, updated, seconds in model.objects.values_list(
            "clip_id",
            "expert_id",
            "grade",
            "created_at",
            "updated_at",
            "seconds_spent",
        ).iterator(chunk_size=CHUNK):
            if c not in clip_ids:
                continue
            rows.append(
                (
                    clip_pseudonym(c),
                    expert_pseudonym(e),
                    g,
                    iso_time(created),
                    iso_time(updated),
                    seconds,
                    repeat,
                )
            )
    rows.sort(key=lambda row: (row[0], row[1], row[6]))
    n = writer.write_csv("votes.csv", [*header, "is_repeat"], iter(rows))
    crowd = (row[:3] for row in rows if not row[6])
    writer.write_csv("crowdkit.csv", ["task", "worker", "label"], crowd)
    return n


def history_write(writer, *, clip_ids: set[int]) -> int:
    """vote_history.csv of the exported clips (``clip_ids``)."""
    rows = sorted(
        (
            (
                clip_pseudonym(c),
                expert_pseudonym(e),
                action,
                g,
                prev,
                int(rep),
                iso_time(at),
            )
            for c, e, action, g, prev, rep, at in VoteHistory.objects.order_by(
                "at", "id"
            )
            .values_list(
                "clip_id",
                "expert_id",
                "action",
                "grade",
                "previous_grade",
                "is_repeat",
                "at",
            )
            .iterator(chunk_size=CHUNK)
            if c in clip_ids
        ),
        # stable: one expert's rows of a clip stay in the order they happened
        key=lambda row: (row[0], row[1]),
    )
    return writer.write_csv(
        "vote_history.csv",
        ["clip", "expert", "action", "grade", "previous_grade", "is_repeat", "at"],
        iter(rows),
    )


def distributions_write(writer, counts: dict) -> None:
    ids = sorted(counts, key=clip_pseudonym)
    matrix = np.array([counts[i] for i in ids], dtype=float).reshape(-1, 5)
    n = matrix.sum(axis=1)
    voted = n > 0
    # Whole columns at once (a hundred thousand clips in well under a second).
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.where(voted[:, None], matrix / n[:, None], 0.0)
    shares = exact.round(6)
    mean = (exact @ np.arange(1, 6)).round(6)
    spread = dispersion.clip_dispersion(matrix) if len(ids) else None
    ordinal = spread.ordinal_dispersion.round(6) if len(ids) else []
    entropy = spread.entropy_bits.round(6) if len(ids) else []
    mode = np.array(GRADES)[matrix.argmax(axis=1)] if len(ids) else []
    counts_int = matrix.astype(np.int64).tolist()
    shares_list = shares.tolist()
    n_list = n.astype(np.int64).tolist()

    def rows():
        for i, clip_id in enumerate(ids):
            has = bool(voted[i])
            yield (
                clip_pseudonym(clip_id),
                *counts_int[i],
                n_list[i],
                *shares_list[i],
                mode[i] if has else "",
                float(mean[i]) if has else "",
                float(ordinal[i]) if has else "",
                float(entropy[i]) if has else "",
            )

    header = ["clip", *[f"n_{g.lower()}" for g in GRADES], "n_votes"]
    header += [f"p_{g.lower()}" for g in GRADES]
    header += ["mode", "mean_grade", "ordinal_dispersion", "entropy_bits"]
    writer.write_csv("distributions.csv", header, rows())


def recordings_write(writer) -> None:
    from django.db.models import Count

    rows = sorted(
        (
            recording_pseudonym(r.pk),
            storage.patient_pseudonym(r.patient.code) if r.patient_id else "",
            r.fps,
            r.width,
            r.height,
            r.n_frames or "",
            r.um_per_px or "",
            r.status,
            int(r.is_synthetic),
            r.n_clips,
        )
        for r in Recording.objects.select_related("patient").annotate(
            n_clips=Count("clips")
        )
    )
    header = ["recording", "patient", "fps", "width", "height", "n_frames"]
    header += ["um_per_px", "status", "synthetic", "n_clips"]
    writer.write_csv("recordings.csv", header, rows)


def snapshot_write(writer, snapshot, version) -> None:
    writer.write_bytes(
        "snapshot.json",
        json.dumps(
            {
                "sha256": snapshot.sha256,
                "cutoff": iso_time(snapshot.cutoff),
                "min_votes": snapshot.min_votes,
                "n_clips": snapshot.n_clips,
                "n_votes": snapshot.n_votes,
                "clips": sorted(clip_pseudonym(c) for c in snapshot.clip_ids),
                # the bundle's manifest.jsonl is this snapshot's, pseudonymised
                "training_manifest": "manifest.jsonl",
                "rebuild": REBUILD,
            },
            indent=2,
        ).encode(),
    )
    folds = None
    if version is not None:
        path = storage.absolute(version.artifact_path) / "folds.json"
        if path.is_file():
            folds = json.loads(path.read_text())
    if folds is None:
        from modeling.cv import folds_make
        from modeling.manifest import manifest_read

        records = manifest_read(storage.absolute(snapshot.path))
        made = folds_make(
            np.argmax([r.votes for r in records], axis=1),
            [r.patient_id for r in records],
            k=3,
            seed=0,
        )
        ids = [r.clip_id for r in records]
        folds = {
            f"fold_{f.index}": {
                side: [ids[i] for i in getattr(f, side)]
                for side in ("train", "val", "test")
            }
            for f in made
        }
    renamed = {
        name: {
            side: sorted(clip_pseudonym(int(c)) for c in ids)
            for side, ids in fold.items()
        }
        for name, fold in folds.items()
    }
    writer.write_bytes("folds.json", json.dumps(renamed, indent=2).encode())


def predictions_write(writer, version) -> None:
    from registry.models import Prediction

    rows = sorted(
        (
            clip_pseudonym(c),
            version.number,
            src,
            fold if fold is not None else "",
            a,
            b,
            cc,
            d,
            e,
        )
        for c, src, fold, a, b, cc, d, e in Prediction.objects.filter(version=version)
        .values_list("clip_id", "source", "fold", "p_a", "p_b", "p_c", "p_d", "p_e")
        .iterator(chunk_size=CHUNK)
    )
    header = ["clip", "version", "source", "fold", "p_a", "p_b", "p_c", "p_d", "p_e"]
    writer.write_csv("predictions.csv", header, rows)
