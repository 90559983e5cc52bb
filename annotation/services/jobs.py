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


def job_mark_running(*, job_id: int, celery_task_id: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.RUNNING,
        celery_task_id=celery_task_id,
        updated_at=timezone.now(),
    )


def job_mark_done(*, job_id: int, result: dict) -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.DONE, result=result, updated_at=timezone.now()
    )


def job_mark_failed(*, job_id: int, error: str) -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.FAILED,
        error_message=message_scrub(error)[:5000],
        updated_at=timezone.now(),
    )


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
