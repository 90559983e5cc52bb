"""Reads: recordings for the operators' pages and the progress poll."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from annotation.models import Clip, Recording

_ACTIVE_CLIPS = Count("clips", filter=Q(clips__is_active=True))
BUSY = (Recording.Status.QUEUED, Recording.Status.PROCESSING)


def recordings_for_list() -> QuerySet:
    """Newest first, each with ``n_clips`` (its active clips)."""
    return (
        Recording.objects.select_related("patient")
        .annotate(n_clips=_ACTIVE_CLIPS)
        .order_by("-created_at")
    )


def recording_for_status(*, recording_id: int) -> Recording | None:
    """One row: the recording with ``n_clips``, for the page's progress poll."""
    return (
        Recording.objects.annotate(n_clips=_ACTIVE_CLIPS)
        .filter(pk=recording_id)
        .first()
    )


def recording_clips(*, recording: Recording) -> tuple[QuerySet, int]:
    """(the recording's active clips in order, the number of withdrawn ones)."""
    clips = recording.clips.filter(is_active=True).order_by("id")
    return clips, recording.clips.filter(is_active=False).count()


def recording_status_payload(*, recording: Recording) -> dict:
    """What the recording page shows and polls (``recording`` carries ``n_clips``
    when it comes from ``recording_for_status``)."""
    n_clips = getattr(recording, "n_clips", None)
    if n_clips is None:
        n_clips = recording.clips.filter(is_active=True).count()
    return {
        "id": recording.pk,
        "status": recording.status,
        "status_label": recording.get_status_display(),
        "mode": recording.mode,
        "progress_percent": round(recording.progress_percent, 1),
        "frames_per_s": (
            round(recording.frames_per_s, 1)
            if recording.frames_per_s is not None
            else None
        ),
        "n_frames": recording.n_frames,
        "fps": recording.fps,
        "width": recording.width,
        "height": recording.height,
        "error_message": recording.error_message,
        "n_clips": n_clips,
        "preview_ready": recording.preview_ready,
        "finished": recording.status
        in (Recording.Status.DONE, Recording.Status.FAILED),
    }


REVIEW_PAGE_SIZE = 60


def clips_for_review(*, limit: int = REVIEW_PAGE_SIZE) -> tuple[list[Clip], int]:
    """(the oldest pending clips, up to ``limit``, with recording and patient;
    the number pending in all)."""
    pending = Clip.objects.filter(review=Clip.Review.PENDING, is_active=True)
    rows = list(pending.select_related("recording", "patient").order_by("id")[:limit])
    return rows, pending.count()


def clips_rejected_recently(*, limit: int = 20) -> list[Clip]:
    """The latest rejections, kept for the record, newest first."""
    return list(
        Clip.objects.filter(review=Clip.Review.REJECTED)
        .select_related("recording", "reviewed_by")
        .order_by("-reviewed_at", "-id")[:limit]
    )
