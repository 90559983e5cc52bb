"""The export and import jobs on the worker: write or read the bundle, report
progress and the outcome on the job row."""

from __future__ import annotations

import os

from annotation.models import Job
from annotation.services import job_mark_done, job_mark_failed
from exports.bundle import bundle_write
from exports.services import export_path_for
from registry import selectors as registry_selectors
from registry.models import Snapshot


def dataset_export_run(*, job_id: int) -> dict:
    job = Job.objects.get(pk=job_id)
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

    def progress(step: str, share: float) -> None:
        Job.objects.filter(pk=job_id).update(
            result={"step": step, "progress_percent": round(100 * share, 1)}
        )

    summary = bundle_write(
        partial,
        snapshot=snapshot,
        version=version,
        licence=params.get("licence", ""),
        progress=progress,
    )
    os.replace(partial, final)  # the download appears complete or not at all
    result = {**summary, "file": final.name, "progress_percent": 100.0}
    job_mark_done(job_id=job_id, result=result)
    return result


def dataset_import_run(*, job_id: int) -> dict:
    """Verify and import the job's uploaded bundle; a refused bundle fails the
    job with the reason. The upload is removed either way (a re-delivered task
    whose upload is gone has nothing left to do)."""
    from exports.importer import BundleError, bundle_import
    from exports.services import import_path_for

    job = Job.objects.get(pk=job_id)
    if job.status in (Job.Status.DONE, Job.Status.FAILED):
        return {"skipped": True}
    path = import_path_for(job)
    if not path.is_file():
        job_mark_failed(
            job_id=job_id, error="the uploaded bundle is gone; upload it again"
        )
        return {"failed": "upload gone"}
    Job.objects.filter(pk=job_id).update(
        result={"step": "verifying checksums and importing", "progress_percent": 10.0}
    )
    try:
        result = bundle_import(path)
    except BundleError as exc:
        job_mark_failed(job_id=job_id, error=f"not imported: {exc.message}")
        return {"failed": exc.message}
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
