"""What a dead worker's export or import leaves: the job fails with the reason and
its files go (a half-written ``.zip.partial``; the upload of an import, which
would otherwise stay on disk with nobody to import it)."""

from __future__ import annotations

from annotation.models import Job
from annotation.services.jobs import job_lost
from exports.services import export_path_for, import_path_for


def _partial_remove(job_id: int) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is not None and job.status in (Job.Status.QUEUED, Job.Status.RUNNING):
        export_path_for(job).with_suffix(".zip.partial").unlink(missing_ok=True)


def _upload_remove(job_id: int) -> None:
    job = Job.objects.filter(pk=job_id).first()
    if job is not None and job.status in (Job.Status.QUEUED, Job.Status.RUNNING):
        import_path_for(job).unlink(missing_ok=True)


def export_lost(row) -> str:
    return job_lost(row, doing="writing this export", cleanup=_partial_remove)


def import_lost(row) -> str:
    return job_lost(
        row,
        doing="importing this bundle",
        cleanup=_upload_remove,
    )
