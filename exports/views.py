"""Export and import pages (under /exports/), administrators only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotation import roles
from annotation import services as annotation_services
from annotation.errors import DomainError
from annotation.models import Job
from exports import services
from registry import selectors as registry_selectors
from registry.models import Snapshot

admin_required = roles.admin_page_required(
    "Exports and imports are for administrators."
)


@require_GET
@admin_required
def export_home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "exports/home.html",
        {
            "jobs": services.export_jobs()[:20],
            "imports": services.import_jobs()[:20],
            "snapshots": Snapshot.objects.order_by("-created_at")[:20],
            "versions": registry_selectors.version_list()[:20],
            "max_upload_mb": settings.MAX_UPLOAD_MB,
        },
    )


@require_POST
@admin_required
def export_start(request: HttpRequest) -> HttpResponse:
    version = request.POST.get("version") or None
    try:
        job = services.export_request(
            snapshot_sha=request.POST.get("snapshot", ""),
            version_id=int(version) if version else None,
            licence=request.POST.get("licence", ""),
            user=request.user,
        )
    except (DomainError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "Choose a listed version."))
    else:
        messages.success(
            request, f"Export {job.pk} queued; this page shows its progress."
        )
    return redirect("export_home")


@require_GET
@admin_required
def export_download(request: HttpRequest, job_id: int) -> FileResponse:
    job = Job.objects.filter(pk=job_id, kind=services.EXPORT_KIND).first()
    if job is None or job.status != Job.Status.DONE:
        raise Http404("That export is not ready.")
    path = services.export_dir() / job.result.get("file", "")
    if not path.is_file() or path.parent != services.export_dir():
        raise Http404("The export file is gone; export again.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


@require_POST
@admin_required
def import_upload(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("bundle")
    if upload is None:
        messages.error(request, "Choose an export .zip to import.")
        return redirect("export_home")
    if upload.size > settings.MAX_UPLOAD_MB * 1024 * 1024:
        messages.error(request, f"The file is larger than {settings.MAX_UPLOAD_MB} MB.")
        return redirect("export_home")
    # The upload is streamed to a temporary file; the worker imports it (a large
    # bundle would outlast the request's timeout).
    services.import_dir().mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".upload", dir=services.import_dir())
    with os.fdopen(handle, "wb") as fh:
        for chunk in upload.chunks():
            fh.write(chunk)
    job = services.import_request(
        upload=Path(temporary), name=upload.name, user=request.user
    )
    messages.success(
        request,
        f"Import {job.pk} queued: checksums first, then the clips and votes; this "
        "page shows how it went.",
    )
    return redirect("export_home")


@require_POST
@admin_required
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    """Cancel an export or import: a queued one ends now; a running one stops at
    its next progress report (an export keeps no file, an import rolls back)."""
    kinds = (services.EXPORT_KIND, services.IMPORT_KIND)
    if not Job.objects.filter(pk=job_id, kind__in=kinds).exists():
        raise Http404(f"There is no export or import {job_id}.")
    job = annotation_services.job_cancel(job_id=job_id, user=request.user)
    if job.status == Job.Status.CANCELLED:
        messages.success(request, f"Job {job_id} cancelled.")
    elif job.status == Job.Status.RUNNING:
        messages.success(
            request, f"Job {job_id} will stop at its next progress report."
        )
    else:
        messages.error(request, f"Job {job_id} had already ended ({job.status}).")
    return redirect("export_home")
