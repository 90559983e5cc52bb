"""Recording preprocessing as the Celery tasks run it: re-read, process, store.

:func:`recording_preprocess_run` turns an uploaded recording into tracked clips with
``workers.video.pipeline`` (automatic: the best-tracked sperm up to
``Recording.max_clips``; manual: the template tracker from each clicked point), then
replaces the recording's clips in one transaction. Bad input (a
:class:`~workers.video.io.VideoError`) ends in status *failed* with the error's
message; nothing raises out of it for bad input, so the worker carries on, and no
partial clips are ever stored.

:func:`recording_inspect_run` writes the first frame and its detections, for the
page where an operator clicks target sperm.

:func:`demo_recordings_process` renders synthetic full-field recordings for the demo,
stores them through the upload service and runs them through the same path.
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

from annotation import services, services_recordings
from annotation.models import Recording
from workers.video.detection import DETECTOR_PRESETS, DetectorConfig
from workers.video.io import VideoError, probe
from workers.video.pipeline import (
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
    services_recordings.recording_mark_failed(
        recording_id=recording_id, message=message
    )
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
    if services_recordings.video_container_sniff(head) is None:
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
    services_recordings.recording_update_info(
        recording_id=recording.pk,
        fps=fps,
        width=info.width,
        height=info.height,
        n_frames=info.n_frames,
    )
    return info, fps


def _pipeline_config(recording: Recording) -> PipelineConfig:
    # Synthetic recordings come from workers.video.synthetic (bright heads); real
    # ones get the detector defaults, tuned on dark-head phase-contrast footage.
    detector = (
        DETECTOR_PRESETS["synthetic"] if recording.is_synthetic else DetectorConfig()
    )
    return PipelineConfig(max_clips=recording.max_clips, detector=detector)


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
        services_recordings.recording_update_progress(
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
        services_recordings.recording_mark_failed(
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
    services_recordings.recording_mark_processing(recording_id=recording_id)
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
    if not result.clips:
        message = (
            f"No sperm was tracked for {config.clip_frames} consecutive frames, so "
            "no clip could be cut. Check the micrometres per pixel, or click target "
            "sperm on the first frame (manual mode)."
        )
        return _failed(recording_id, message)
    specs = clip_specs_from_result(
        result, is_synthetic=recording.is_synthetic, qualities=qualities
    )
    clips = services_recordings.clips_replace_for_recording(
        recording=recording, clips=specs
    )
    if not manual:
        Recording.objects.filter(pk=recording_id).update(n_frames=result.n_frames)
    services_recordings.recording_mark_done(
        recording_id=recording_id, frames_per_s=round(result.frames_per_s, 1)
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
    image_name, detections_name = services_recordings.recording_preview_names(
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


def _preview_ensure(recording: Recording, path: Path) -> None:
    """The first-frame preview for the recording's page, if not there yet."""
    image_name, _ = services_recordings.recording_preview_names(
        recording_id=recording.pk
    )
    if not default_storage.exists(image_name):
        _preview_write(recording, path)


# --- the demo's synthetic recordings -------------------------------------------------

DEMO_PATIENT = "SYN-REC"
DEMO_PREFIX = "demo-field-recording-"


def demo_recordings_process(
    *,
    n_recordings: int = 1,
    seed: int = 0,
    n_sperm: int = 50,
    n_frames: int = 48,
    width: int = 1392,
    height: int = 976,
    fps: float = 15.0,
    max_clips: int = 10,
    log: Callable[[str], None] = lambda _: None,
) -> list[Recording]:
    """Render synthetic full-field recordings, store them as uploads, preprocess them.

    Each clip gets the ground-truth quality of the cell it
    follows as ``latent_quality``. Idempotent: a recording already done is kept; one
    that failed or was never processed is run again. Other synthetic recordings
    waiting in status "uploaded" are preprocessed too.
    """
    from workers.video.io import encode_mp4
    from workers.video.synthetic import UM_PER_PX, render_recording

    patient = services.patient_get_or_create(code=DEMO_PATIENT, is_synthetic=True)
    recordings = []
    for index in range(n_recordings):
        name = f"{DEMO_PREFIX}{seed}-{index + 1:02d}.mp4"
        rng = np.random.default_rng([seed, 9_100_003, index])
        truth = render_recording(
            n_sperm=n_sperm,
            n_frames=n_frames,
            width=width,
            height=height,
            fps=fps,
            rng=rng,
            focus_drift=0.3,
        )
        recording = Recording.objects.filter(
            original_name=name, is_synthetic=True
        ).first()
        if recording is None:
            log(f"Rendering {name} ({n_sperm} sperm, {n_frames} frames)...")
            video = encode_mp4(truth.frames(), fps=fps)
            recording = services_recordings.recording_create_from_upload(
                file=ContentFile(video, name=name),
                patient=patient,
                original_name=name,
                um_per_px=UM_PER_PX,
                fps=fps,
                max_clips=max_clips,
                microscope_notes="Synthetic full-field recording (demo).",
                is_synthetic=True,
            )
        if recording.status != Recording.Status.DONE or not recording.clips.exists():
            log(f"Preprocessing recording #{recording.pk} ({name})...")

            outcome = recording_preprocess_run(
                recording_id=recording.pk,
                qualities=lambda track, start, _truth=truth: _nearest_quality(
                    _truth, track=track, frame_start=start
                ),
            )
            log(
                f"  {outcome.status}: {outcome.n_clips} clips"
                + (f" ({outcome.message})" if outcome.message else "")
            )
        recordings.append(recording)
    # Synthetic recordings rendered elsewhere (demo_data --recordings) that still
    # wait for preprocessing go through the same path, without ground truth.
    waiting = Recording.objects.filter(
        is_synthetic=True, status=Recording.Status.UPLOADED
    ).exclude(pk__in=[r.pk for r in recordings])
    for recording in waiting:
        log(f"Preprocessing recording #{recording.pk} ({recording.original_name})...")
        outcome = recording_preprocess_run(recording_id=recording.pk)
        log(f"  {outcome.status}: {outcome.n_clips} clips")
        recordings.append(recording)
    return recordings


def _nearest_quality(truth, *, track: np.ndarray, frame_start: int) -> float | None:
    """Quality of the synthetic cell whose true path the clip's track follows."""
    track = np.asarray(track, dtype=float)
    best, best_err = None, np.inf
    for cell_id, true in truth.tracks.items():
        window = true[frame_start : frame_start + len(track)]
        if len(window) != len(track) or np.isnan(window).all():
            continue
        err = float(np.nanmedian(np.linalg.norm(window - track, axis=1)))
        if err < best_err:
            best, best_err = cell_id, err
    if best is None or best_err > 6.0:
        return None
    return float(truth.qualities[best])
