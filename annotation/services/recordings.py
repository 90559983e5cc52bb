"""Writes for raw recordings: upload checks, status updates, clip replacement.

This app never decodes video (the worker does, through ``video``). The upload check
here is therefore a content sniff of the container's magic bytes plus a size
limit; whether the frames decode is the worker's check, and its failures land in
the recording's ``error_message`` through :func:`recording_mark_failed`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from annotation import errors
from annotation.models import (
    Clip,
    Patient,
    Recording,
    RepeatVote,
    SiteSetting,
    Vote,
)
from annotation.services import enqueue
from annotation.services.clips import clip_create
from jobs.reaper import REQUEUED, lost_sentence
from jobs.selectors import requeued_before, subject_alive

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
MAX_TARGETS = 50
# A click counts as a detected head when it lies within this many pixels of the
# head's box; it is then moved to the box centre.
TARGET_SNAP_PX = 12.0
MAX_CLIPS_PER_RECORDING = 200
_SNIFF_BYTES = 512
_CHUNK = 1024 * 1024


class RecordingRejected(errors.DomainError):
    """The upload is not a usable recording (size, type, fields)."""

    status_code = 400


class RecordingTooLarge(RecordingRejected):
    status_code = 413


class DuplicateRecording(errors.DomainError):
    """The same bytes were uploaded before; ``existing`` is that recording."""

    status_code = 409

    def __init__(self, message: str, *, existing: Recording) -> None:
        super().__init__(message)
        self.existing = existing


class RecordingBusy(errors.DomainError):
    status_code = 409


# --- the content check ---------------------------------------------------------------

_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}

# What a non-video file that people upload by mistake looks like, for the message.
_NOT_VIDEO_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BM", "a BMP image"),
)


def video_container_sniff(head: bytes) -> str | None:
    """The container format the first bytes announce ('mp4', 'avi', 'mkv', 'mpeg',
    'mpeg-ts', 'asf', 'flv'), or None when they are not a known video container."""
    if len(head) >= 8 and head[4:8] in _MP4_BOXES:
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] in {b"AVI ", b"AVIX"}:
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    if head[:4] in {b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"}:
        return "mpeg"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpeg-ts"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    if head[:3] == b"FLV":
        return "flv"
    return None


def _looks_like(head: bytes) -> str:
    for signature, kind in _NOT_VIDEO_SIGNATURES:
        if head.startswith(signature):
            return kind
    if head[:4] == b"RIFF":
        return "a RIFF file that is not an AVI video (e.g. a WAV sound)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "an unknown binary format"
    return "a text file"


def recording_upload_check(*, file: File, name: str) -> None:
    """Size limit (settings.MAX_UPLOAD_MB), extension and magic-byte content check.

    Raises RecordingTooLarge or RecordingRejected with a message a person can act on.
    """
    limit_mb = settings.MAX_UPLOAD_MB
    size = file.size
    if size is not None and size > limit_mb * 1024 * 1024:
        raise RecordingTooLarge(
            f"“{name}” is {size / 1024 / 1024:.1f} MB; the upload limit is "
            f"{limit_mb} MB (setting MAX_UPLOAD_MB). Cut the recording shorter or ask "
            "the administrator to raise the limit."
        )
    if not size:
        raise RecordingRejected(f"“{name}” is empty (0 bytes). Upload the file again.")
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise RecordingRejected(
            f"“{name}” does not have a video file extension; upload one of "
            f"{', '.join(VIDEO_EXTENSIONS)} (MP4 or AVI recordings work best)."
        )
    file.seek(0)
    head = file.read(_SNIFF_BYTES)
    file.seek(0)
    if video_container_sniff(head) is None:
        raise RecordingRejected(
            f"“{name}” is not a video: its content looks like {_looks_like(head)}, "
            "whatever its name says. Upload an MP4 or AVI recording from the "
            "microscope camera."
        )


def _sha256(file: File) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    for chunk in file.chunks(_CHUNK):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def _duplicate_message(existing: Recording) -> str:
    when = timezone.localtime(existing.created_at).strftime("%Y-%m-%d %H:%M")
    return (
        f"This file was already uploaded as recording #{existing.pk} "
        f"(“{existing.original_name or 'unnamed'}”, patient {existing.patient.code}, "
        f"{when}); identical content (SHA-256) is stored once. Open recording "
        f"#{existing.pk} instead."
    )


def _check_options(
    *, um_per_px: float | None, fps: float | None, max_clips: int, mode: str
) -> None:
    if um_per_px is not None and not (0 < um_per_px <= 100):
        raise RecordingRejected(
            f"Micrometres per pixel must be between 0 and 100, got {um_per_px}."
        )
    if fps is not None and not (0 < fps <= 10_000):
        raise RecordingRejected(
            f"The frame rate must be between 0 and 10000 fps, got {fps}."
        )
    if not 1 <= max_clips <= MAX_CLIPS_PER_RECORDING:
        raise RecordingRejected(
            f"Clips per recording must be between 1 and {MAX_CLIPS_PER_RECORDING}, "
            f"got {max_clips}."
        )
    if mode not in Recording.Mode.values:
        raise RecordingRejected(
            f"Mode must be one of {', '.join(Recording.Mode.values)}, got {mode!r}."
        )


def recording_create_from_upload(
    *,
    file: File,
    patient: Patient,
    original_name: str | None = None,
    um_per_px: float | None = None,
    fps: float | None = None,
    mode: str = Recording.Mode.AUTO,
    max_clips: int = 10,
    microscope_notes: str = "",
    is_synthetic: bool = False,
) -> Recording:
    """Check and store an uploaded recording; it is not queued yet.

    ``fps`` overrides the container's frame rate (the worker fills it in otherwise).
    Raises RecordingRejected / RecordingTooLarge for unusable files and
    DuplicateRecording, naming the earlier recording, for content already stored.
    """
    name = Path(original_name or file.name or "recording").name
    _check_options(um_per_px=um_per_px, fps=fps, max_clips=max_clips, mode=mode)
    recording_upload_check(file=file, name=name)
    sha256 = _sha256(file)
    existing = Recording.objects.filter(sha256=sha256).select_related("patient").first()
    if existing is not None:
        raise DuplicateRecording(_duplicate_message(existing), existing=existing)
    stored_name = None
    try:
        with transaction.atomic():
            recording = Recording.objects.create(
                patient=patient,
                sha256=sha256,
                original_name=name[:255],
                fps=float(fps or 0.0),
                um_per_px=um_per_px,
                mode=mode,
                max_clips=max_clips,
                microscope_notes=microscope_notes,
                is_synthetic=is_synthetic,
                status=Recording.Status.UPLOADED,
            )
            # The stored name comes from the content hash, never from the user.
            recording.source.save(
                f"{sha256[:24]}{Path(name).suffix.lower()}", file, save=False
            )
            stored_name = recording.source.name
            recording.save(update_fields=["source"])
            # A preview left by a deleted recording with the same id is not ours.
            _delete_files(recording_preview_names(recording_id=recording.pk))
    except IntegrityError:
        if stored_name:
            default_storage.delete(stored_name)
        existing = Recording.objects.filter(sha256=sha256).first()
        if existing is None:
            raise
        raise DuplicateRecording(
            _duplicate_message(existing), existing=existing
        ) from None
    except BaseException:
        if stored_name:
            default_storage.delete(stored_name)
        raise
    return recording


# --- status --------------------------------------------------------------------------


def recording_preview_names(*, recording_id: int) -> tuple[str, str]:
    """Storage names of the first-frame image and its detections (JSON)."""
    base = f"recordings/{recording_id}"
    return f"{base}/first_frame.png", f"{base}/first_frame.json"


def recording_update_info(
    *, recording_id: int, fps: float, width: int, height: int, n_frames: int | None
) -> None:
    Recording.objects.filter(pk=recording_id).update(
        fps=fps,
        width=width,
        height=height,
        n_frames=n_frames,
        updated_at=timezone.now(),
    )


def recording_mark_processing(*, recording_id: int) -> None:
    Recording.objects.filter(pk=recording_id).update(
        status=Recording.Status.PROCESSING,
        progress_percent=0.0,
        frames_per_s=None,
        error_message="",
        updated_at=timezone.now(),
    )


def recording_update_progress(
    *, recording_id: int, percent: float, frames_per_s: float | None
) -> None:
    Recording.objects.filter(
        pk=recording_id, status=Recording.Status.PROCESSING
    ).update(
        progress_percent=max(0.0, min(100.0, float(percent))),
        frames_per_s=frames_per_s,
        updated_at=timezone.now(),
    )


def recording_motility_set(*, recording_id: int, summary: dict) -> None:
    """Store the recording-level motility summary (``video.motility``)."""
    Recording.objects.filter(pk=recording_id).update(
        motility=summary, updated_at=timezone.now()
    )


def recording_mark_done(
    *, recording_id: int, frames_per_s: float | None, message: str = ""
) -> None:
    Recording.objects.filter(pk=recording_id).update(
        status=Recording.Status.DONE,
        progress_percent=100.0,
        frames_per_s=frames_per_s,
        error_message=message,
        updated_at=timezone.now(),
    )


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+[\w.+-]*")


def message_scrub(text: str) -> str:
    """A message for people: server file-system paths (from a worker's error)
    replaced by "[server file]"."""
    media = str(settings.MEDIA_ROOT).rstrip("/")
    if media:
        text = text.replace(media, "[media]")
    return _ABSOLUTE_PATH.sub("[server file]", text)


def recording_lost(row) -> str:
    """The reaper's handler for a recording whose worker died (``jobs.reaper``)."""
    (recording_id,) = row.ids
    busy = (Recording.Status.QUEUED, Recording.Status.PROCESSING)
    changed = Recording.objects.filter(pk=recording_id, status__in=busy).update(
        status=Recording.Status.FAILED,
        error_message=lost_sentence(row, "preprocessing this recording")
        + " Run it again.",
        updated_at=timezone.now(),
    )
    return f"recording {recording_id} " + ("failed" if changed else "left as it was")


def preview_lost(row) -> str:
    """The first-frame preview's worker died: it is asked for again once (cheap,
    and the operator waits for it); a second loss fails the recording."""
    (recording_id,) = row.ids
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None or recording.preview_ready:
        return "nothing to do"
    if not requeued_before(subject=row.subject):
        _send(enqueue.RECORDING_INSPECT, recording_id)
        return REQUEUED
    recording_mark_failed(
        recording_id=recording_id,
        message=lost_sentence(row, "reading the first frame") + " Upload it again.",
    )
    return "recording failed"


def recording_mark_failed(*, recording_id: int, message: str) -> None:
    Recording.objects.filter(pk=recording_id).update(
        status=Recording.Status.FAILED,
        error_message=message_scrub(
            message or "Preprocessing failed for an unknown reason."
        ),
        updated_at=timezone.now(),
    )


def _first_frame_heads(recording: Recording) -> list[dict] | None:
    """The first frame's detected head boxes, or None while they are not stored."""
    import json

    _, name = recording_preview_names(recording_id=recording.pk)
    if not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as handle:
        return list(json.load(handle).get("detections", []))


def _snap(x: float, y: float, heads: list[dict]) -> tuple[float, float]:
    """The centre of the detected head the click falls on (within TARGET_SNAP_PX
    of its box), or RecordingRejected: a click on background would become a clip
    of nothing."""
    best, best_gap = None, float("inf")
    for box in heads:
        gap_x = max(box["x0"] - x, 0.0, x - box["x1"])
        gap_y = max(box["y0"] - y, 0.0, y - box["y1"])
        gap = (gap_x**2 + gap_y**2) ** 0.5
        if gap < best_gap:
            best, best_gap = box, gap
    if best is None or best_gap > TARGET_SNAP_PX:
        raise RecordingRejected(
            f"No sperm head was detected at ({x:.0f}, {y:.0f}): click on one of "
            f"the outlined heads (within {TARGET_SNAP_PX:.0f} px of it)."
        )
    return (best["x0"] + best["x1"]) / 2, (best["y0"] + best["y1"]) / 2


def recording_targets_set(
    *, recording: Recording, targets: Iterable[Iterable[float]]
) -> Recording:
    """Store the target sperm clicked on the first frame and switch to manual mode.

    Once the first frame's detections are stored and hold any head, each click
    must fall on a detected head (it snaps to the head's centre); a frame where
    the detector found nothing (footage it does not suit) takes clicks as they
    are."""
    heads = _first_frame_heads(recording)
    points = []
    for point in targets:
        x, y = (float(v) for v in point)
        if (
            recording.width
            and recording.height
            and not (0 <= x < recording.width and 0 <= y < recording.height)
        ):
            raise RecordingRejected(
                f"The point ({x:.0f}, {y:.0f}) lies outside the "
                f"{recording.width}×{recording.height} px frame."
            )
        if heads:
            x, y = _snap(x, y, heads)
        points.append([round(x, 2), round(y, 2)])
    if not points:
        raise RecordingRejected("Click at least one sperm on the first frame.")
    if len(points) > MAX_TARGETS:
        raise RecordingRejected(
            f"{len(points)} targets is too many; choose at most {MAX_TARGETS}."
        )
    recording.targets = points
    recording.mode = Recording.Mode.MANUAL
    recording.save(update_fields=["targets", "mode", "updated_at"])
    return recording


def _busy(recording: Recording) -> bool:
    """A worker is on it (its heartbeat is fresh), or it waits in the queue (sent
    less than the CPU time limit ago: a message the broker lost does not block
    it for ever)."""
    if recording.status == Recording.Status.PROCESSING:
        return subject_alive(subject=f"recording:{recording.pk}")
    return recording.status == Recording.Status.QUEUED and (
        recording.updated_at
        > timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT_CPU)
    )


def recording_enqueue(*, recording: Recording, mode: str | None = None) -> Recording:
    """Queue preprocessing once the transaction commits (re-running is allowed).

    A recording a worker is processing (its heartbeat is fresh), or that waits in
    the queue, is refused.
    """
    if mode is not None:
        if mode not in Recording.Mode.values:
            raise RecordingRejected(f"Unknown mode {mode!r}.")
        if mode == Recording.Mode.MANUAL and not recording.targets:
            raise RecordingRejected(
                "Manual mode needs target sperm: click them on the first frame."
            )
        recording.mode = mode
    if _busy(recording):
        raise RecordingBusy(
            f"Recording #{recording.pk} is already {recording.status}; wait for it "
            "to finish before running it again."
        )
    recording.status = Recording.Status.QUEUED
    recording.progress_percent = 0.0
    recording.frames_per_s = None
    recording.error_message = ""
    recording.save(
        update_fields=[
            "mode",
            "status",
            "progress_percent",
            "frames_per_s",
            "error_message",
            "updated_at",
        ]
    )
    _send(enqueue.RECORDING_PREPROCESS, recording.pk)
    return recording


def recording_submit(*, recording: Recording) -> str:
    """Start the work a new upload needs; returns what to tell the uploader.

    Automatic mode queues preprocessing; manual mode queues the first-frame preview
    on which the operator clicks the target sperm.
    """
    if recording.mode == Recording.Mode.AUTO:
        recording_enqueue(recording=recording)
        return f"Recording #{recording.pk} uploaded; preprocessing is queued."
    recording_inspect_enqueue(recording=recording)
    return (
        f"Recording #{recording.pk} uploaded. Click the target sperm on the first "
        "frame when it appears."
    )


def recording_preview_mark_ready(*, recording_id: int) -> None:
    Recording.objects.filter(pk=recording_id).update(preview_ready=True)


def recording_inspect_enqueue(*, recording: Recording) -> None:
    """Queue the first-frame preview (image + detections) for choosing targets."""
    _send(enqueue.RECORDING_INSPECT, recording.pk)


def _send(task_name: str, recording_id: int) -> None:
    def unreachable(reason: str) -> None:
        recording_mark_failed(
            recording_id=recording_id,
            message=f"The recording is stored but could not be queued: {reason}",
        )

    enqueue.task_send(
        name=task_name,
        kwargs={"recording_id": recording_id},
        on_unreachable=unreachable,
    )


# --- clips ---------------------------------------------------------------------------


def _clip_files(clips: Iterable[Clip]) -> list[str]:
    return [
        f.name for clip in clips for f in (clip.array_file, clip.video_file) if f.name
    ]


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):  # missing is what we want anyway
            default_storage.delete(name)


def clips_replace_for_recording(
    *, recording: Recording, clips: list[dict]
) -> list[Clip]:
    """Replace the recording's clips with new ones, all or nothing.

    Each item of ``clips`` holds the keyword arguments of ``services.clip_create``
    (without ``patient`` and ``recording``). Old clips without any vote are deleted;
    old clips that experts already graded are withdrawn (``is_active=False``) and
    kept, so no vote is ever lost. Running it twice leaves one active set. If any
    clip fails, the database is rolled back and the files written so far removed.
    """
    written: list[str] = []
    created: list[Clip] = []
    try:
        with transaction.atomic():
            locked = Recording.objects.select_for_update().get(pk=recording.pk)
            old = Clip.objects.filter(recording=locked)
            graded_ids = set(
                old.filter(
                    Q(Exists(Vote.objects.filter(clip=OuterRef("pk"))))
                    | Q(Exists(RepeatVote.objects.filter(clip=OuterRef("pk"))))
                ).values_list("pk", flat=True)
            )
            doomed = list(old.exclude(pk__in=graded_ids))
            doomed_files = _clip_files(doomed)
            Clip.objects.filter(pk__in=[c.pk for c in doomed]).delete()
            Clip.objects.filter(pk__in=graded_ids).update(is_active=False)
            # Clips of real recordings wait for review while the site asks for
            # it; synthetic ones (the demo) are approved at once.
            review = (
                Clip.Review.PENDING
                if SiteSetting.load().review_new_clips and not locked.is_synthetic
                else Clip.Review.APPROVED
            )
            for spec in clips:
                spec = {"is_synthetic": locked.is_synthetic, "review": review, **spec}
                clip = clip_create(patient=locked.patient, recording=locked, **spec)
                created.append(clip)
                written.extend(_clip_files([clip]))
            transaction.on_commit(lambda: _delete_files(doomed_files))
    except BaseException:
        _delete_files(written)
        raise
    return created
