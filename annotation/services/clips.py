"""Writes: patients and tracked clips (frames as .npy, the mp4 beside them)."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from annotation import errors
from annotation.models import (
    Clip,
    ClipLease,
    Patient,
    Recording,
    RepeatVote,
    Vote,
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
    review: str = Clip.Review.APPROVED,
) -> Clip:
    """Store a tracked clip: frames as .npy and the mp4 under clips/<id>/.

    ``fps`` is the clip's own rate; ``source_fps`` and ``frame_stride`` say how
    it was sampled from the recording, ``span`` how many source frames it covers
    (default: one per clip frame). ``review``: approved (default) or pending
    (``clip_review`` decides later). ``frame_end`` is exclusive (frame_start +
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
            review=review,
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


def clip_withdraw_broken(*, clip_id: int, reason: str) -> None:
    """Take a clip that cannot be served or trained on out of grading, keeping
    its votes, with the reason for admins (the review reason on its page and in
    the clip list); its leases go, so nobody waits on it."""
    Clip.objects.filter(pk=clip_id).update(
        is_active=False, review_reason=f"withdrawn automatically: {reason}"[:200]
    )
    ClipLease.objects.filter(clip_id=clip_id).delete()


def clip_repeat_video(*, clip: Clip) -> str | None:
    """The storage name of the clip's video for hidden repeats: the same frames
    encoded afresh (another quality setting, so other bytes), made once, so an
    expert cannot tell a repeat by comparing the file with the first showing's.
    None when the clip has no frame array to encode (the first video serves)."""
    import os

    import numpy as np
    from django.core.files.storage import default_storage

    from video.io import encode_mp4

    name = f"clips/repeat/{clip.pk}.mp4"
    if default_storage.exists(name):
        return name
    if not clip.array_file:
        return None
    try:
        with clip.array_file.open("rb") as fh:
            frames = np.load(fh, allow_pickle=False)
        data = encode_mp4(frames, fps=clip.fps or 15.0, crf=20)
    except (OSError, ValueError):
        return None
    path = default_storage.path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "wb") as out:
        out.write(data)
    os.replace(partial, path)  # two first requests at once: the same file either way
    return name


REVIEW_DECISIONS = {"approve": Clip.Review.APPROVED, "reject": Clip.Review.REJECTED}
REVIEW_REASON_MAX = 200


def clip_review(*, clip_id: int, decision: str, reason: str = "", user) -> Clip:
    """Approve a clip for grading or reject it, with the reviewer and a reason.

    A rejection needs a reason; rejected clips never reach experts (their live
    leases are dropped) and are kept for the record. A decision can be changed
    while no expert has graded the clip; after that, withdraw it instead
    (``clips_set_active``) so no vote is lost."""
    if decision not in REVIEW_DECISIONS:
        raise errors.InvalidInput(
            f"decision must be 'approve' or 'reject', not {decision!r}."
        )
    reason = (reason or "").strip()
    if decision == "reject" and not reason:
        raise errors.InvalidInput("Say why the clip is rejected (a short reason).")
    if len(reason) > REVIEW_REASON_MAX:
        raise errors.InvalidInput(
            f"The reason is {len(reason)} characters; keep it under "
            f"{REVIEW_REASON_MAX}."
        )
    with transaction.atomic():
        clip = Clip.objects.select_for_update().filter(pk=clip_id).first()
        if clip is None:
            raise errors.ClipNotFound(f"Clip {clip_id} does not exist.")
        if clip.review != Clip.Review.PENDING and (
            Vote.objects.filter(clip=clip).exists()
            or RepeatVote.objects.filter(clip=clip).exists()
        ):
            raise errors.ReviewClosed(
                f"Clip {clip_id} is already graded by experts; withdraw it from "
                "grading instead of changing its review."
            )
        clip.review = REVIEW_DECISIONS[decision]
        clip.review_reason = reason
        clip.reviewed_by = user
        clip.reviewed_at = timezone.now()
        clip.save(
            update_fields=["review", "review_reason", "reviewed_by", "reviewed_at"]
        )
        if clip.review == Clip.Review.REJECTED:
            ClipLease.objects.filter(clip=clip).delete()
    return clip
