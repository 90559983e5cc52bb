"""Writes: patients and tracked clips (frames as .npy, the mp4 beside them)."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction

from annotation import errors
from annotation.models import (
    Clip,
    Patient,
    Recording,
)


def patient_get_or_create(*, code: str, is_synthetic: bool = False) -> Patient:
    code = code.strip()
    if not code:
        raise errors.InvalidInput("A patient needs a non-empty pseudonymous code.")
    patient, _ = Patient.objects.get_or_create(
        code=code, defaults={"is_synthetic": is_synthetic}
    )
    return patient


def clip_create(
    *,
    patient: Patient,
    frames: np.ndarray,
    fps: float,
    track: list,
    speed: float,
    speed_unit: str,
    kinematics: dict,
    recording: Recording | None = None,
    frame_start: int = 0,
    is_synthetic: bool = False,
    latent_quality: float | None = None,
    video_bytes: bytes | None = None,
    source_fps: float | None = None,
    frame_stride: float = 1.0,
    span: int | None = None,
) -> Clip:
    """Store a tracked clip: frames as .npy and the mp4 under clips/<id>/.

    ``fps`` is the clip's own rate; ``source_fps`` and ``frame_stride`` say how
    it was sampled from the recording, ``span`` how many source frames it covers
    (default: one per clip frame). ``frame_end`` is exclusive (frame_start +
    span). The mp4 must be made by the caller (video.io.encode_mp4): this app
    does not encode video.
    """
    if video_bytes is None:
        raise ValueError(
            "clip_create needs video_bytes: encode the frames with "
            "video.io.encode_mp4(frames, fps=fps) first."
        )
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be uint8 (T, H, W, C); got {frames.dtype} {frames.shape}"
        )
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if speed_unit not in Clip.SpeedUnit.values:
        raise ValueError(f"speed_unit must be one of {Clip.SpeedUnit.values}")
    n_frames = int(frames.shape[0])
    buffer = io.BytesIO()
    np.save(buffer, frames, allow_pickle=False)
    with transaction.atomic():
        clip = Clip.objects.create(
            recording=recording,
            patient=patient,
            frame_start=frame_start,
            frame_end=frame_start + (span or n_frames),
            n_frames=n_frames,
            fps=float(fps),
            source_fps=float(source_fps) if source_fps else None,
            frame_stride=float(frame_stride),
            size_px=int(frames.shape[1]),
            track=[[float(x), float(y)] for x, y in np.asarray(track).reshape(-1, 2)],
            speed=float(speed),
            speed_unit=speed_unit,
            kinematics=kinematics,
            is_synthetic=is_synthetic,
            latent_quality=latent_quality,
        )
        clip.array_file.save(
            f"{clip.pk}/frames.npy", ContentFile(buffer.getvalue()), save=False
        )
        clip.video_file.save(
            f"{clip.pk}/video.mp4", ContentFile(video_bytes), save=False
        )
        clip.save(update_fields=["array_file", "video_file"])
    return clip


def clips_set_active(*, clip_ids, active: bool) -> int:
    """Withdraw clips from grading (``active=False``) or put them back; their votes
    are kept either way. Returns the number of clips changed."""
    return Clip.objects.filter(pk__in=list(clip_ids)).update(is_active=active)
