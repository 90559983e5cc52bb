"""The export bundle: one versioned zip, written as a stream (rows are read in
chunks and each file's SHA-256 is computed while it is written), and read back by
``bundle_import`` after every checksum matched.

Layout (all names relative to the zip's root):

    FORMAT.json            {"format": "spermgrade-export", "version": 1, ...}
    dataset.json           the modeling manifest (``modeling/manifest.py``):
    manifest.jsonl         ``python -m modeling train --data <zip or folder>``:
                           the clips with at least SNAPSHOT_MIN_VOTES votes today
                           (the snapshots' rule), or, when a snapshot (or a
                           version) is chosen, that snapshot's rows with their
                           votes as they stood at its cutoff (``bundle_snapshot``;
                           FORMAT.json's "training_manifest" says which)
    clips/<clip>.npy       uint8 (T, H, W, 3) frames
    media/<clip>.mp4       the browser H.264 video, where there is one
    clips.jsonl            per clip: patient, recording, frames, fps (the clip's),
                           source_fps and stride (how it was sampled), track,
                           kinematics, synthetic flag (and latent quality)
    votes.csv              clip, expert, grade, time, seconds, is_repeat
    vote_history.csv       every creation and change of a vote
    distributions.csv      counts, shares, n, mode, mean, dispersion per clip
    recordings.csv         recording-level summaries
    crowdkit.csv           task,worker,label (crowd-kit's input)
    snapshot.json, folds.json    when a snapshot (or version) is chosen
    predictions.csv        when a model version is chosen
    datasheet.md           what, when, how many, agreement, licence, synthetic
    checksums.sha256       "<sha256>  <name>" for every file above

Times are ISO 8601 in UTC; rows come in no promised order (sort on reading).
Only pseudonyms appear: ``C-``/``E-``/``P-``/``R-`` keyed hashes, never a
username, name, e-mail, internal id, patient code or server path.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from annotation.models import (
    GRADES,
    Clip,
    ClipDistribution,
)
from exports.bundle_snapshot import REBUILD, SnapshotManifest, SnapshotUnexportable
from exports.bundle_snapshot import TARGET as SNAPSHOT_TARGET
from exports.bundle_tables import (
    distributions_write,
    history_write,
    iso_time,
    predictions_write,
    recordings_write,
    snapshot_write,
    votes_write,
)
from exports.datasheet import datasheet_text
from exports.pseudonyms import clip_pseudonym, key_id, recording_pseudonym
from modeling.manifest import dataset_meta, manifest_line
from registry import storage

FORMAT = "spermgrade-export"
# How manifest.jsonl chooses and labels its clips: the platform's snapshot rule.
TRAINING_TARGET = (
    "clips with at least min_votes panel votes (SNAPSHOT_MIN_VOTES, as the "
    "platform's snapshots); target: the normalised histogram of each expert's "
    "current grade, hidden repeats excluded"
)
VERSION = 1
CHUNK = 5000


class _Writer:
    """Members of the zip, each hashed while written."""

    def __init__(self, bundle: zipfile.ZipFile) -> None:
        self.bundle = bundle
        self.sums: dict[str, str] = {}

    def open(self, name: str, *, compress: bool = True):
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        # Text compresses well at the fastest level (the attribute is private
        # before Python 3.13, public after).
        info._compresslevel = 1
        return _Hashed(self, name, self.bundle.open(info, "w", force_zip64=True))

    def write_bytes(self, name: str, data: bytes, *, compress: bool = True) -> None:
        with self.open(name, compress=compress) as fh:
            fh.write(data)

    def write_csv(self, name: str, header: list[str], rows: Iterable) -> int:
        count = 0
        with self.open(name) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            out = csv.writer(text)
            out.writerow(header)
            for row in rows:
                out.writerow(row)
                count += 1
            text.flush()
            text.detach()
        return count


class _Hashed:
    def __init__(self, writer: _Writer, name: str, raw) -> None:
        self.writer, self.name, self.raw = writer, name, raw
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.raw.write(data)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self.raw.flush()

    @property
    def closed(self) -> bool:
        return self.raw.closed

    def close(self) -> None:
        if not self.raw.closed:
            self.raw.close()
            self.writer.sums[self.name] = self.digest.hexdigest()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _patient(code: str) -> str:
    return _patient_cached(code, settings.PSEUDONYM_KEY)


# Keyed by the secret too: a changed PSEUDONYM_KEY gives new pseudonyms.
@functools.lru_cache(maxsize=100_000)
def _patient_cached(code: str, key: str) -> str:
    return storage.patient_pseudonym(code)


def _copy(writer: _Writer, name: str, path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src, writer.open(name, compress=False) as dst:
        while block := src.read(1 << 20):
            digest.update(block)
            dst.write(block)
    return digest.hexdigest()


def _in_pseudonym_order(clips):
    """The clips' rows sorted by pseudonym, fetched a chunk at a time: id order
    would pair each pseudonym with its id for anyone who can guess the ids."""
    order = sorted(clips.values_list("pk", flat=True), key=clip_pseudonym)
    for start in range(0, len(order), CHUNK):
        chunk = order[start : start + CHUNK]
        rows = {row["pk"]: row for row in clips.filter(pk__in=chunk)}
        for pk in chunk:
            yield rows[pk]


def _frozen_rows_write(
    writer: _Writer,
    frozen: SnapshotManifest,
    exported: dict[int, str],
    manifest,
    digest,
) -> int:
    """The snapshot's rows into the training manifest, in pseudonym order; the
    arrays of its clips not exported with today's (withdrawn since) come from the
    snapshot's folder. Every array must hash as the snapshot recorded it."""
    label = f"snapshot {frozen.snapshot.sha256[:12]}"
    n = 0
    for clip_id, row, source in frozen.rows():
        sha = exported.get(clip_id)
        if sha is None:
            if not source.is_file():
                raise SnapshotUnexportable(
                    f"Clip {row['clip_id']}'s frames are missing from {label}'s "
                    "folder; export without the snapshot or take a new one."
                )
            sha = _copy(writer, row["array"], source)
        if sha != row["array_sha256"]:
            raise SnapshotUnexportable(
                f"Clip {row['clip_id']}'s frames no longer hash as {label} froze "
                "them (the file changed on disk); export without the snapshot or "
                "take a new one."
            )
        line = manifest_line(row, where=f"clip {row['clip_id']}")
        manifest.write(line)
        digest.update(line)
        n += 1
    return n


def _training(summary: dict, snapshot, *, synthetic: bool) -> dict:
    """How manifest.jsonl chose and labelled its clips: dataset.json's keys
    ("meta") and FORMAT.json's "training_manifest" ("rule")."""
    if snapshot is None:
        return {
            "meta": {
                "synthetic": synthetic,
                "min_votes": summary["min_votes"],
                "target": TRAINING_TARGET,
            },
            "rule": {
                "source": "current votes",
                "min_votes": summary["min_votes"],
                "target": TRAINING_TARGET,
                "n_clips": summary["n_training_clips"],
                "n_clips_below_min_votes": summary["n_below_min_votes"],
            },
        }
    frozen = {
        "snapshot_sha256": snapshot.sha256,
        "cutoff": iso_time(snapshot.cutoff),
        "min_votes": snapshot.min_votes,
        "target": SNAPSHOT_TARGET,
    }
    return {
        "meta": {"synthetic": snapshot.is_synthetic, **frozen},
        "rule": {
            "source": "snapshot",
            **frozen,
            "n_clips": summary["n_training_clips"],
            "n_clips_not_in_snapshot": summary["n_not_in_snapshot"],
            "rebuild": REBUILD,
        },
    }


def bundle_write(
    out_path: str | Path,
    *,
    snapshot=None,
    version=None,
    licence: str = "",
    progress: Callable[[str, float], None] = lambda step, share: None,
) -> dict:
    """Write the bundle to ``out_path``; returns counts for the job's result."""
    out_path = Path(out_path)
    if version is not None and snapshot is None:
        snapshot = version.snapshot
    # With a snapshot the training manifest is the snapshot's (checked first: a
    # snapshot that cannot be carried fails the export before any work).
    frozen = SnapshotManifest(snapshot) if snapshot is not None else None
    frozen_ids = frozen.clip_ids if frozen is not None else set()
    frozen_arrays: dict[int, str] = {}  # its clips' arrays as exported below
    # Plain rows, not model instances: a hundred thousand clips in seconds.
    clips = Clip.objects.filter(is_active=True, review=Clip.Review.APPROVED).values(
        "pk",
        "patient__code",
        "recording_id",
        "frame_start",
        "frame_end",
        "n_frames",
        "fps",
        "source_fps",
        "frame_stride",
        "size_px",
        "track",
        "speed",
        "speed_unit",
        "kinematics",
        "is_synthetic",
        "latent_quality",
        "array_file",
        "video_file",
    )
    media = Clip._meta.get_field("array_file").storage
    n_clips = clips.count()
    counts = {
        d.clip_id: [d.n_a, d.n_b, d.n_c, d.n_d, d.n_e]
        for d in ClipDistribution.objects.all().iterator(chunk_size=CHUNK)
    }
    min_votes = settings.SNAPSHOT_MIN_VOTES
    summary: dict = {"n_clips": 0, "n_training_clips": 0}
    if frozen is None:
        summary |= {"n_below_min_votes": 0, "min_votes": min_votes}
    else:
        summary |= {"n_not_in_snapshot": 0, "min_votes": snapshot.min_votes}
    synthetic = True
    # The clips the bundle lists: its votes, history and distributions are theirs
    # (a withdrawn clip's votes would name a clip the importer never sees).
    exported: set[int] = set()
    with zipfile.ZipFile(out_path, "w", allowZip64=True) as bundle:
        writer = _Writer(bundle)
        manifest_digest = hashlib.sha256()
        # A zip takes one member at a time: the two per-clip listings go to
        # temporary files (on disk: memory stays flat) while the arrays stream in.
        with tempfile.TemporaryFile() as manifest, tempfile.TemporaryFile() as meta:
            for i, clip in enumerate(_in_pseudonym_order(clips)):
                name = clip_pseudonym(clip["pk"])
                exported.add(clip["pk"])
                synthetic = synthetic and clip["is_synthetic"]
                row = {
                    "clip_id": name,
                    "patient_id": _patient(clip["patient__code"]),
                    "speed": float(clip["speed"]),
                    "kinematics": clip["kinematics"] or {},
                    "synthetic": clip["is_synthetic"],
                }
                votes = counts.get(clip["pk"]) or [0] * len(GRADES)
                if frozen is not None:
                    trainable = clip["pk"] in frozen_ids
                else:
                    # The snapshots' rule: a clip is a training target only with
                    # at least min_votes votes (one vote is not a distribution).
                    trainable = sum(votes) >= min_votes
                    if trainable:
                        row["votes"] = votes
                if clip["array_file"]:
                    row["array"] = f"clips/{name}.npy"
                    row["array_sha256"] = _copy(
                        writer, row["array"], Path(media.path(clip["array_file"]))
                    )
                    summary["n_clips"] += 1
                    if frozen is not None:
                        if trainable:
                            frozen_arrays[clip["pk"]] = row["array_sha256"]
                        else:
                            summary["n_not_in_snapshot"] += 1
                    elif trainable:
                        line = manifest_line(row, where=f"clip {name}")
                        manifest.write(line)
                        manifest_digest.update(line)
                        summary["n_training_clips"] += 1
                    else:
                        summary["n_below_min_votes"] += 1
                if clip["video_file"]:
                    _copy(
                        writer,
                        f"media/{name}.mp4",
                        Path(media.path(clip["video_file"])),
                    )
                meta.write(
                    (
                        json.dumps(
                            {
                                "clip": name,
                                "patient": row["patient_id"],
                                "recording": recording_pseudonym(clip["recording_id"])
                                if clip["recording_id"]
                                else None,
                                "frame_start": clip["frame_start"],
                                "frame_end": clip["frame_end"],
                                "n_frames": clip["n_frames"],
                                "n_votes": sum(votes),
                                "in_training_manifest": trainable
                                and bool(clip["array_file"]),
                                "fps": clip["fps"],
                                "stride": clip["frame_stride"],
                                "source_fps": clip["source_fps"] or clip["fps"],
                                "size_px": clip["size_px"],
                                "track": clip["track"],
                                "speed": clip["speed"],
                                "speed_unit": clip["speed_unit"],
                                "kinematics": clip["kinematics"],
                                "synthetic": clip["is_synthetic"],
                                "latent_quality": clip["latent_quality"]
                                if clip["is_synthetic"]
                                else None,
                                "video": f"media/{name}.mp4"
                                if clip["video_file"]
                                else None,
                            },
                            sort_keys=True,
                        )
                        + "\n"
                    ).encode()
                )
                if i % 200 == 0:
                    progress("clips", i / max(1, n_clips))
            if frozen is not None:
                progress("snapshot", 0.0)
                summary["n_training_clips"] = _frozen_rows_write(
                    writer, frozen, frozen_arrays, manifest, manifest_digest
                )
            for listing, handle in (
                ("manifest.jsonl", manifest),
                ("clips.jsonl", meta),
            ):
                handle.seek(0)
                with writer.open(listing) as member:
                    shutil.copyfileobj(handle, member, 1 << 20)
        training = _training(summary, snapshot, synthetic=synthetic)
        writer.write_bytes(
            "dataset.json",
            json.dumps(
                dataset_meta(
                    n_clips=summary["n_training_clips"],
                    manifest_sha=manifest_digest.hexdigest(),
                    meta={"source": "SpermGrade export", **training["meta"]},
                ),
                indent=2,
            ).encode(),
        )
        progress("votes", 0.0)
        from django.db import connection

        if connection.vendor == "postgresql":
            from exports.bundle_pg import votes_write_pg

            summary["n_votes"], summary["n_history"] = votes_write_pg(
                writer, clip_ids=exported
            )
        else:
            summary["n_votes"] = votes_write(writer, clip_ids=exported)
            summary["n_history"] = history_write(writer, clip_ids=exported)
        progress("distributions", 0.8)
        for clip_id in counts.keys() - exported:
            del counts[clip_id]
        distributions_write(writer, counts)
        recordings_write(writer)
        if snapshot is not None:
            snapshot_write(writer, snapshot, version)
        if version is not None:
            predictions_write(writer, version)
        writer.write_bytes(
            "datasheet.md",
            datasheet_text(
                summary,
                synthetic=synthetic,
                licence=licence,
                snapshot=snapshot,
                version=version,
                format_label=f"{FORMAT} v{VERSION}",
            ).encode(),
        )
        writer.write_bytes(
            "FORMAT.json",
            json.dumps(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "synthetic": synthetic,
                    "manifest": "dataset.json + manifest.jsonl (modeling format)",
                    "pseudonym_key_id": key_id(),
                    "time_resolution_seconds": settings.EXPORT_TIME_RESOLUTION_SECONDS,
                    "row_order": "rows sorted by pseudonym (never by internal id)",
                    "training_manifest": training["rule"],
                },
                indent=2,
            ).encode(),
        )
        lines = "".join(f"{h}  {n}\n" for n, h in sorted(writer.sums.items()))
        bundle.writestr("checksums.sha256", lines)
    progress("done", 1.0)
    summary["bytes"] = out_path.stat().st_size
    return summary
