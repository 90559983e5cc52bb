"""What a dead worker's export or import leaves: the job fails with the reason and
its files go (a half-written ``.zip.partial``; the upload of an import, which
would otherwise stay on disk with nobody to import it)."""

from __future__ import annotations

from annotation.models import Job
from annotation.services.jobs import UNFINISHED, job_lost
from exports.services import export_path_for, import_path_for


def _file_remover(path_for):
    """Removes the file ``path_for(job)`` names while the job has not ended."""

    def remove(job_id: int) -> None:
        job = Job.objects.filter(pk=job_id).first()
        if job is not None and job.status in UNFINISHED:
            path_for(job).unlink(missing_ok=True)

    return remove


def export_lost(row) -> str:
    return job_lost(
        row,
        doing="writing this export",
        cleanup=_file_remover(
            lambda job: export_path_for(job).with_suffix(".zip.partial")
        ),
    )


def import_lost(row) -> str:
    return job_lost(
        row, doing="importing this bundle", cleanup=_file_remover(import_path_for)
    )
