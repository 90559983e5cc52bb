"""Exports and imports are jobs (``annotation.Job``, kinds "export" and "import")
run by a cpu worker. An export's zip lands under MEDIA_ROOT/exports/ and is
downloaded through an admin-only view; an import's upload waits under
MEDIA_ROOT/imports/ until the worker has imported it (the web request only
uploads and queues: a large bundle outlasts any request timeout)."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from annotation.errors import InvalidInput
from annotation.models import Job
from annotation.services import job_create, job_send
from annotation.services.enqueue import DATASET_EXPORT, DATASET_IMPORT
from registry import selectors as registry_selectors

EXPORT_KIND = "export"
IMPORT_KIND = "import"


def export_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_request(
    *,
    snapshot_sha: str = "",
    version_id: int | None = None,
    licence: str = "",
    user=None,
) -> Job:
    """Queue an export; unknown snapshot or version ids are refused here."""
    if (
        version_id is not None
        and registry_selectors.version_get(version_id=version_id) is None
    ):
        raise InvalidInput(f"There is no model version {version_id}.")
    if snapshot_sha:
        from registry.models import Snapshot

        if not Snapshot.objects.filter(sha256=snapshot_sha).exists():
            raise InvalidInput(f"There is no snapshot {snapshot_sha[:12]}.")
    job = job_create(
        kind=EXPORT_KIND,
        params={
            "snapshot": snapshot_sha,
            "version_id": version_id,
            "licence": licence[:500],
            "by": getattr(user, "username", ""),
        },
    )
    job_send(job=job, task=DATASET_EXPORT)
    return job


def export_path_for(job: Job) -> Path:
    stamp = timezone.localtime(job.created_at).strftime("%Y%m%d-%H%M%S")
    return export_dir() / f"spermgrade-export-{job.pk}-{stamp}.zip"


def export_jobs():
    return Job.objects.filter(kind=EXPORT_KIND).order_by("-created_at")


def import_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


def import_path_for(job: Job) -> Path:
    return import_dir() / f"import-{job.pk}.zip"


def import_request(*, upload: Path, name: str = "", user=None) -> Job:
    """Queue the import of an uploaded bundle: the file moves under imports/ and
    a cpu worker verifies and imports it (progress and outcome on the job)."""
    job = job_create(
        kind=IMPORT_KIND,
        params={"name": name[:200], "by": getattr(user, "username", "")},
    )
    target = import_path_for(job)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(upload), target)
    job_send(job=job, task=DATASET_IMPORT)
    return job


def import_jobs():
    return Job.objects.filter(kind=IMPORT_KIND).order_by("-created_at")
