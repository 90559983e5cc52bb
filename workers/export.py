"""The export job on the worker: write the bundle, report progress on the job row."""

from __future__ import annotations

import os

from annotation.models import Job
from annotation.services import job_mark_done
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
