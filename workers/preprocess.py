"""Recording preprocessing as the Celery tasks run it: re-read, process, store.

:func:`recording_preprocess_run` turns an uploaded recording into tracked clips with
``video.pipeline`` (automatic: the best-tracked sperm up to
``Recording.max_clips``; manual: the template tracker from each clicked point), then
replaces the recording's clips in one transaction. Bad input (a
:class:`~video.io.VideoError`) ends in status *failed* with the error's
message; nothing raises out of it for bad input, so the worker carries on, and no
partial clips are ever stored.

:func:`recording_inspect_run` writes the first frame and its detections, for the
page where an operator clicks target sperm.

The demo's synthetic recordings go through the same path
(``workers/demo_recordings.py``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from annotation import services
from annotation.models import Recording
from jobs import liveness
from registry import selectors as registry_selectors
from registry import services as registry_services
from video.clips import span_source_frames
from video.detection import DETECTOR_PRESETS, DetectorConfig
from video.io import VideoError, probe
from video.pipeline import (
    PipelineConfig,
    PipelineResult,
    first_frame_detections,
    recording_process_file,
)

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5
MIN_FRAME_PX = 32


@dataclass(frozen=True)
class PreprocessOutcome:
    recording_id: int
    status: str
    n_clips: int = 0
    frames_per_s: float | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return {
            "recording_id": self.recording_id,
            "status": self.status,
            "n_clips": self.n_clips,
            "frames_per_s": self.frames_per_s,
            "message": self.message,
        }


def _failed(recording_id: int, message: str) -> PreprocessOutcome:
    """Mark the recording failed with ``message`` and say so in the outcome."""
    services.recording_mark_failed(recording_id=recording_id, message=message)
    return PreprocessOutcome(recording_id, Recording.Status.FAILED, message=message)


def _limits() -> tuple[int, int]:
    return (
        int(settings.RECORDING_MAX_FRAMES),
        int(settings.RECORDING_MAX_PIXELS),
    )


def _source_path(recording: Recording) -> Path:
    if not recording.source:
        raise VideoError(
            f"Recording #{recording.pk} has no stored file; upload it again."
        )
    try:
        path = Path(recording.source.path)
    except NotImplementedError:  # a remote storage: work on a local copy
        raise VideoError("The recording storage has no local path.") from None
    if not path.is_file():
        raise VideoError(
            f"The stored file of recording #{recording.pk} is missing on the "
            "server; upload it again."
        )
    return path


def _probe(recording: Recording, path: Path):
    max_frames, max_pixels = _limits()
    name = recording.original_name or path.name
    with path.open("rb") as handle:
        head = handle.read(512)
    if services.video_container_sniff(head) is None:
        # FFmpeg happily "decodes" a PNG or a JPEG as a one-frame video.
        raise VideoError(
            f"“{name}” is not a video file: its content is not an MP4, AVI or other "
            "video container. Upload the microscope camera's recording."
        )
    info = probe(path, max_pixels=max_pixels, max_frames=max_frames)
    if min(info.width, info.height) < MIN_FRAME_PX:
        raise VideoError(
            f"“{name}”: frames of {info.width}x{info.height} px are too small to "
            f"follow a sperm (at least {MIN_FRAME_PX} px each way)."
        )
    fps = recording.fps if recording.fps and recording.fps > 0 else info.fps
    if not fps or fps <= 0:
        raise VideoError(
            f"“{recording.original_name}” states no frame rate; upload it again "
            "with the frame rate (fps) filled in."
        )
    services.recording_update_info(
        recording_id=recording.pk,
        fps=fps,
        width=info.width,
        height=info.height,
        n_frames=info.n_frames,
    )
    return info, fps


def _pipeline_config(recording: Recording) -> PipelineConfig:
    # Synthetic recordings come from video.synthetic (bright heads); real
    # ones get the detector defaults, tuned on dark-head phase-contrast footage.
    detector = (
        DETECTOR_PRESETS["synthetic"] if recording.is_synthetic else DetectorConfig()
    )
    return PipelineConfig(
        max_clips=recording.max_clips,
        detector=detector,
        clip_frames=settings.CLIP_FRAMES,
        clip_fps=settings.CLIP_FPS,
    )


class _ProgressWriter:
    """Writes percent and frames/s to the row at most every PROGRESS_INTERVAL_S."""

    def __init__(self, recording_id: int, total_frames: int) -> None:
        self.recording_id = recording_id
        self.total = max(1, total_frames)
        self.last = 0.0

    def __call__(self, frames_done: int, frames_per_s: float) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        liveness.stage("preprocessing", f"{frames_done} frames")
        services.recording_update_progress(
            recording_id=self.recording_id,
            percent=min(99.0, 100.0 * frames_done / self.total),
            frames_per_s=frames_per_s,
        )


def clip_specs_from_result(
    result: PipelineResult, *, is_synthetic: bool, qualities: Callable | None = None
) -> list[dict]:
    """Keyword arguments of ``services.clip_create`` for each clip of the result."""
    specs = []
    for item in result.clips:
        cut = item.clip
        kinematics = item.kinematics.to_dict()
        kinematics["track_quality"] = round(float(item.quality), 4)
        specs.append(
            {
                "frames": cut.frames,
                "fps": float(cut.fps),
                "source_fps": float(cut.source_fps or cut.fps),
                "frame_stride": float(cut.stride),
                "span": int(cut.span or len(cut.frames)),
                "track": np.asarray(cut.track, dtype=float).tolist(),
                "speed": float(item.speed),
                "speed_unit": item.speed_unit,
                "kinematics": kinematics,
                "frame_start": int(cut.frame_start),
                "video_bytes": item.video_bytes or cut.mp4(),
                "is_synthetic": is_synthetic,
                "latent_quality": (
                    qualities(cut.track, cut.frame_start) if qualities else None
                ),
            }
        )
    return specs


def recording_preprocess_run(
    *, recording_id: int, qualities: Callable | None = None
) -> PreprocessOutcome:
    """Process one recording end to end (see the module docstring); idempotent.

    ``qualities(track, frame_start)`` (synthetic recordings only) gives a clip's
    ground-truth quality, stored as its ``latent_quality``. An unexpected error
    marks the recording failed and is raised again for the worker's log.
    """
    try:
        return _preprocess(recording_id=recording_id, qualities=qualities)
    except SoftTimeLimitExceeded:
        message = (
            "Preprocessing took longer than the time limit of "
            f"{settings.CELERY_TASK_TIME_LIMIT_CPU} s (CELERY_TASK_TIME_LIMIT_CPU) "
            "and was stopped; no clip was stored. Cut the recording shorter or "
            "raise the limit."
        )
        return _failed(recording_id, message)
    except Exception as exc:
        services.recording_mark_failed(
            recording_id=recording_id,
            message=(
                f"Preprocessing failed unexpectedly ({type(exc).__name__}: {exc}). "
                "Run it again; if it fails again, the worker log has the details."
            ),
        )
        raise


def _preprocess(*, recording_id: int, qualities: Callable | None) -> PreprocessOutcome:
    recording = (
        Recording.objects.select_related("patient").filter(pk=recording_id).first()
    )
    if recording is None:
        logger.warning("recording %s no longer exists; nothing to do", recording_id)
        return PreprocessOutcome(recording_id, "missing", message="no such recording")
    services.recording_mark_processing(recording_id=recording_id)
    liveness.stage("preprocessing")
    manual = recording.mode == Recording.Mode.MANUAL
    try:
        if manual and not recording.targets:
            raise VideoError(
                "Manual mode needs target sperm: click them on the first frame, "
                "or run the recording in automatic mode."
            )
        path = _source_path(recording)
        info, fps = _probe(recording, path)
        _preview_ensure(recording, path)
        config = _pipeline_config(recording)
        if info.n_frames < config.clip_frames:
            raise VideoError(
                f"“{recording.original_name}” holds {info.n_frames} frames; a clip "
                f"needs {config.clip_frames}. Upload a longer recording."
            )
        total = config.clip_frames if manual else info.n_frames
        result = recording_process_file(
            path,
            um_per_px=recording.um_per_px,
            fps=fps,
            config=config,
            targets=[tuple(p) for p in recording.targets] if manual else None,
            progress=_ProgressWriter(recording_id, total),
        )
    except (VideoError, ValueError) as exc:
        # Bad input, not a bug: record why and let the worker carry on.
        message = str(exc)
        logger.info("recording %s failed: %s", recording_id, message)
        return _failed(recording_id, message)
    # Every track counts for the recording's motility, clips or not.
    services.recording_motility_set(recording_id=recording_id, summary=result.motility)
    if not result.clips:
        span = span_source_frames(fps, config.clip_frames, config.clip_fps)
        seconds = config.clip_frames / (config.clip_fps or fps)
        if result.n_frames < span:
            message = (
                f"The recording has {result.n_frames} frames at {fps:g} fps; a clip "
                f"shows {seconds:.2f} s of motion, {span} of its frames. Upload a "
                "longer recording."
            )
        else:
            message = (
                f"No sperm was tracked for {span} consecutive frames ({seconds:.2f} s "
                "at this frame rate), so no clip could be cut. Check the micrometres "
                "per pixel, or click target sperm on the first frame (manual mode)."
            )
        return _failed(recording_id, message)
    specs = clip_specs_from_result(
        result, is_synthetic=recording.is_synthetic, qualities=qualities
    )
    clips = services.clips_replace_for_recording(recording=recording, clips=specs)
    if not manual:
        Recording.objects.filter(pk=recording_id).update(n_frames=result.n_frames)
    services.recording_mark_done(
        recording_id=recording_id, frames_per_s=round(result.frames_per_s, 1)
    )
    active = registry_selectors.version_active()
    if active is not None and clips:  # new clips get the active model's prediction
        registry_services.version_predict_request(
            version=active, clip_ids=[c.pk for c in clips]
        )
    logger.info(
        "recording %s: %d clips from %d frames at %.1f frames/s",
        recording_id,
        len(clips),
        result.n_frames,
        result.frames_per_s,
    )
    return PreprocessOutcome(
        recording_id,
        Recording.Status.DONE,
        n_clips=len(clips),
        frames_per_s=result.frames_per_s,
    )


def recording_inspect_run(*, recording_id: int) -> PreprocessOutcome:
    """Store the first frame (PNG) and its detections (JSON) for choosing targets.

    Bad input marks the recording failed right away, before anyone clicks.
    """
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None:
        return PreprocessOutcome(recording_id, "missing", message="no such recording")
    try:
        path = _source_path(recording)
        _probe(recording, path)
        _preview_write(recording, path)
    except (VideoError, ValueError) as exc:
        message = str(exc)
        return _failed(recording_id, message)
    return PreprocessOutcome(recording_id, recording.status)


def _preview_write(recording: Recording, path: Path) -> None:
    frame, detections = first_frame_detections(
        path, config=_pipeline_config(recording).detector
    )
    image_name, detections_name = services.recording_preview_names(
        recording_id=recording.pk
    )
    ok, png = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise VideoError("The first frame could not be encoded as an image.")
    boxes = [
        {
            "x0": round(float(b[0]), 1),
            "y0": round(float(b[1]), 1),
            "x1": round(float(b[2]), 1),
            "y1": round(float(b[3]), 1),
            "score": round(float(s), 2),
        }
        for b, s in zip(detections.boxes, detections.scores)
    ]
    payload = {
        "width": int(frame.shape[1]),
        "height": int(frame.shape[0]),
        "detections": boxes,
    }
    for name, data in (
        (image_name, png.tobytes()),
        (detections_name, json.dumps(payload).encode()),
    ):
        if default_storage.exists(name):
            default_storage.delete(name)
        default_storage.save(name, ContentFile(data))
    services.recording_preview_mark_ready(recording_id=recording.pk)


def _preview_ensure(recording: Recording, path: Path) -> None:
    """The first-frame preview for the recording's page, if not there yet."""
    image_name, _ = services.recording_preview_names(recording_id=recording.pk)
    if not (recording.preview_ready and default_storage.exists(image_name)):
        _preview_write(recording, path)
