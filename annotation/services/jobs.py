"""Writes: background job rows and the panel-snapshot job."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from annotation.models import (
    Job,
)
from annotation.selectors.distributions import distribution_arrays
from annotation.services import enqueue
from annotation.services.recordings import message_scrub
from jobs.reaper import lost_sentence


def job_create(*, kind: str, params: dict | None = None) -> Job:
    return Job.objects.create(kind=kind, params=params or {})


def job_send(*, job: Job, task: str, unreachable_prefix: str = "") -> None:
    """Send the job's task (``job_id`` its one argument) once the surrounding
    transaction commits; a broker that is down fails the job with the reason."""
    job_id = job.pk
    enqueue.task_send(
        name=task,
        kwargs={"job_id": job_id},
        on_unreachable=lambda reason: job_mark_failed(
            job_id=job_id, error=f"{unreachable_prefix}{reason}"
        ),
    )


UNFINISHED = (Job.Status.QUEUED, Job.Status.RUNNING)


def job_mark_running(*, job_id: int, celery_task_id: str = "") -> bool:
    """Queued (or running: a re-delivery after its worker died) -> running.
    False for a job that has ended: a late or repeated message does nothing."""
    return bool(
        Job.objects.filter(pk=job_id, status__in=UNFINISHED).update(
            status=Job.Status.RUNNING,
            celery_task_id=celery_task_id,
            updated_at=timezone.now(),
        )
    )


def job_progress(*, job_id: int, step: str, share: float) -> bool:
    """Store what the job is doing; True when it was asked to stop (cancelled)."""
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
        result={"step": step, "progress_percent": round(100 * share, 1)},
        updated_at=timezone.now(),
    )
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_mark_done(*, job_id: int, result: dict) -> bool:
    return bool(
        Job.objects.filter(pk=job_id, status__in=UNFINISHED).update(
            status=Job.Status.DONE, result=result, updated_at=timezone.now()
        )
    )


def job_mark_failed(
    *, job_id: int, error: str, status: str = Job.Status.FAILED
) -> bool:
    """End an unfinished job failed (or cancelled) with the reason; the first
    ending wins."""
    return bool(
        Job.objects.filter(pk=job_id, status__in=UNFINISHED).update(
            status=status,
            error_message=message_scrub(error)[:5000],
            updated_at=timezone.now(),
        )
    )


def job_cancel(*, job_id: int, user=None) -> Job | None:
    """Ask a job to stop: a queued one ends cancelled at once (its message, when a
    worker takes it, finds it ended); a running one stops at its next progress
    report. None when there is no such job; an ended job is left as it is."""
    who = getattr(user, "username", "") or "an admin"
    now = timezone.now()
    ended = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED,
        cancel_requested=True,
        error_message=f"cancelled by {who} before a worker took it",
        updated_at=now,
    )
    if not ended:
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
            cancel_requested=True, updated_at=now
        )
    return Job.objects.filter(pk=job_id).first()


def job_lost(row, *, doing: str = "running this job", cleanup=None) -> str:
    """The reaper's handler for a Job whose worker died (``jobs.reaper``)."""
    (job_id,) = row.ids
    if cleanup is not None:
        cleanup(job_id)
    if job_mark_failed(
        job_id=job_id, error=f"{lost_sentence(row, doing)} Start it again."
    ):
        return f"job {job_id} failed"
    return f"job {job_id} had already ended"


def panel_snapshot_compute(*, clip_ids: list[int] | None = None) -> dict:
    """Summary of the panel's distributions (what the snapshot job stores)."""
    arrays = distribution_arrays(clip_ids=clip_ids)
    voted = arrays.n_votes > 0
    return {
        "n_clips": int(arrays.clip_ids.size),
        "n_votes": int(arrays.n_votes.sum()),
        "n_clips_complete": int((arrays.n_votes >= settings.VOTES_PER_CLIP).sum()),
        "grade_totals": [int(x) for x in arrays.counts.sum(axis=0)],
        "mean_entropy_bits": float(arrays.entropy[voted].mean())
        if voted.any()
        else None,
    }


def panel_snapshot_request() -> Job:
    """Queue the panel snapshot task (sent once the surrounding transaction commits)."""
    job = job_create(kind="panel_snapshot")
    job_send(job=job, task=enqueue.PANEL_SNAPSHOT, unreachable_prefix="Not started: ")
    return job
