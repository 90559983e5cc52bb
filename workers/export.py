"""The export and import jobs on the worker: write or read the bundle, report
progress and the outcome on the job row, and stop when an admin cancels (the
next progress report sees it): a cancelled export leaves no file, a cancelled
import rolls back whole."""

from __future__ import annotations

import os
import time

from annotation.models import Job
from annotation.services import job_mark_done, job_mark_failed, job_progress
from annotation.services.jobs import UNFINISHED
from exports.bundle import bundle_write
from exports.services import export_path_for
from jobs import liveness
from registry import selectors as registry_selectors
from registry.models import Snapshot

PROGRESS_SECONDS = 1.0


class _Cancelled(Exception):
    pass


def dataset_export_run(*, job_id: int) -> dict:
    job = Job.objects.get(pk=job_id)
    if job.status not in UNFINISHED:
        return {"skipped": True}  # cancelled before a worker took it, or ended
    params = job.params
    version = (
        registry_selectors.version_get(version_id=params["version_id"])
        if params.get("version_id")
        else None
    )
    snapshot = (
        Snapshot.objects.filter(sha256=params["snapshot"]).first()
        if params.get("snapshot")
        else None
    )
    final = export_path_for(job)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_suffix(".zip.partial")

    last = [0.0]

    def progress(step: str, share: float) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_SECONDS and share < 1.0:
            return  # a report per clip would double the export's queries
        last[0] = now
        liveness.stage("exporting", step)
        if job_progress(job_id=job_id, step=step, share=share):
            raise _Cancelled(step)

    try:
        summary = bundle_write(
            partial,
            snapshot=snapshot,
            version=version,
            licence=params.get("licence", ""),
            progress=progress,
        )
    except _Cancelled as stop:
        partial.unlink(missing_ok=True)
        job_mark_failed(
            job_id=job_id,
            error=f"cancelled while {stop}; no file was kept",
            status=Job.Status.CANCELLED,
        )
        return {"cancelled": True}
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed export leaves no half file
        raise
    os.replace(partial, final)  # the download appears complete or not at all
    result = {**summary, "file": final.name, "progress_percent": 100.0}
    job_mark_done(job_id=job_id, result=result)
    return result


def dataset_import_run(*, job_id: int) -> dict:
    """Verify and import the job's uploaded bundle; a refused bundle fails the
    job with the reason. The upload is removed either way (a re-delivered task
    whose upload is gone has nothing left to do)."""
    from exports.importer import BundleError, ImportCancelled, bundle_import
    from exports.services import import_path_for

    job = Job.objects.get(pk=job_id)
    if job.status not in UNFINISHED:
        return {"skipped": True}
    path = import_path_for(job)
    if not path.is_file():
        job_mark_failed(
            job_id=job_id, error="the uploaded bundle is gone; upload it again"
        )
        return {"failed": "upload gone"}

    def report(step: str, share: float) -> bool:
        liveness.stage("importing", step)
        return job_progress(job_id=job_id, step=step, share=share)

    try:
        result = bundle_import(path, report=report)
    except BundleError as exc:
        job_mark_failed(job_id=job_id, error=f"not imported: {exc.message}")
        return {"failed": exc.message}
    except ImportCancelled as exc:
        job_mark_failed(job_id=job_id, error=str(exc), status=Job.Status.CANCELLED)
        return {"cancelled": True}
    finally:
        path.unlink(missing_ok=True)
    summary = {
        "already_imported": result["already_imported"],
        "clips": result["clips"],
        "votes": result["votes"],
        "experts": result.get("experts", 0),
        "progress_percent": 100.0,
    }
    job_mark_done(job_id=job_id, result=summary)
    return summary
