"""Recording pages for administrators and operators: upload, list, detail, targets.

The detail page polls a small JSON status endpoint (static/js/recordings.js) for the
preprocessing progress. In manual mode it shows the first frame with the detected
heads drawn over it; the operator clicks target sperm and starts processing. Experts
never see these pages (403); anonymous visitors are sent to the login page.
"""

from __future__ import annotations

import json
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation import errors, selectors, services
from annotation.forms import RecordingTargetsForm, RecordingUploadForm
from annotation.models import Recording
from annotation.roles import user_is_operator
from annotation.uploads import body_limit_bytes
from video.clips import marker_positions


def operator_required(view):
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not user_is_operator(user=request.user):
            raise PermissionDenied(
                "Only administrators and operators handle recordings. Experts grade "
                "clips on the grading page."
            )
        return view(request, *args, **kwargs)

    return wrapped


def _recording_or_404(recording_id: int) -> Recording:
    return get_object_or_404(
        Recording.objects.select_related("patient"), pk=recording_id
    )


@require_GET
@operator_required
def recording_list(request: HttpRequest) -> HttpResponse:
    recordings = selectors.recordings_for_list()
    return render(
        request,
        "recordings/list.html",
        {"recordings": recordings[:500], "n_total": recordings.count()},
    )


def _upload_too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    # The multipart envelope adds a little; the exact check is on the file itself.
    return length > body_limit_bytes(request)


@require_http_methods(["GET", "POST"])
@operator_required
def recording_upload(request: HttpRequest) -> HttpResponse:
    status = 200
    too_large = (
        f"The upload is larger than the limit of {settings.MAX_UPLOAD_MB} MB "
        "(setting MAX_UPLOAD_MB)."
    )
    if request.method == "POST" and _upload_too_large(request):
        # Refuse before Django reads the body into a temporary file.
        return _upload_page(
            request,
            RecordingUploadForm(),
            status=413,
            error=f"{too_large} Cut the recording shorter or ask the "
            "administrator to raise the limit.",
        )
    form = RecordingUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and any(
        getattr(handler, "stopped", False) for handler in request.upload_handlers
    ):
        # The body was longer than it declared: cut at the limit while streaming.
        return _upload_page(
            request,
            RecordingUploadForm(),
            status=413,
            error=f"{too_large} It was stopped there.",
        )
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                patient = services.patient_get_or_create(code=data["patient_code"])
                recording = services.recording_create_from_upload(
                    file=data["file"],
                    patient=patient,
                    original_name=data["file"].name,
                    um_per_px=data["um_per_px"],
                    fps=data["fps"],
                    mode=data["mode"],
                    max_clips=data["max_clips"],
                    microscope_notes=data["microscope_notes"],
                )
            except services.DuplicateRecording as exc:
                form.add_error("file", exc.message)
                return _upload_page(
                    request, form, status=exc.status_code, existing=exc.existing
                )
            except errors.DomainError as exc:
                form.add_error("file", exc.message)
                status = exc.status_code
            else:
                messages.success(
                    request, services.recording_submit(recording=recording)
                )
                return redirect("recording_detail", recording_id=recording.pk)
    return _upload_page(request, form, status=status)


def _upload_page(
    request: HttpRequest,
    form: RecordingUploadForm,
    *,
    status: int,
    existing: Recording | None = None,
    error: str = "",
) -> HttpResponse:
    context = {
        "form": form,
        "error": error,
        "existing": existing,
        "max_upload_mb": settings.MAX_UPLOAD_MB,
    }
    return render(request, "recordings/upload.html", context, status=status)


@require_GET
@operator_required
def recording_detail(request: HttpRequest, recording_id: int) -> HttpResponse:
    recording = _recording_or_404(recording_id)
    clips, withdrawn = selectors.recording_clips(recording=recording)
    return render(
        request,
        "recordings/detail.html",
        {
            "recording": recording,
            "clips": clips,
            "withdrawn": withdrawn,
            "status": selectors.recording_status_payload(recording=recording),
            "busy": recording.status in selectors.BUSY,
            "motility_rows": _motility_rows(recording.motility),
            "targets": recording.targets,
            # The hidden input's initial value; autoescaped in the attribute.
            "targets_json": json.dumps(recording.targets),
            "status_url": reverse("recording_status", args=[recording.pk]),
            "frame_url": reverse("recording_first_frame", args=[recording.pk]),
            "detections_url": reverse("recording_detections", args=[recording.pk]),
        },
    )


def _motility_rows(summary: dict) -> list[tuple]:
    """(label, key, count, percent) per WHO class, for the recording page."""
    counts, percent = summary.get("counts") or {}, summary.get("percent") or {}
    labels = {
        "progressive": "Progressive",
        "non-progressive": "Non-progressive",
        "immotile": "Immotile",
    }
    return [(labels[k], k, counts.get(k, 0), percent.get(k)) for k in labels]


@require_GET
@operator_required
def recording_status(request: HttpRequest, recording_id: int) -> JsonResponse:
    recording = selectors.recording_for_status(recording_id=recording_id)
    if recording is None:
        return JsonResponse(
            {"detail": f"Recording {recording_id} does not exist."}, status=404
        )
    response = JsonResponse(selectors.recording_status_payload(recording=recording))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@operator_required
def recording_first_frame(request: HttpRequest, recording_id: int) -> FileResponse:
    image, _ = services.recording_preview_names(recording_id=recording_id)
    try:
        handle = default_storage.open(image, "rb")
    except FileNotFoundError:
        raise Http404("The first frame is not ready yet.") from None
    return FileResponse(handle, content_type="image/png")


@require_GET
@operator_required
def recording_detections(request: HttpRequest, recording_id: int) -> HttpResponse:
    _, detections = services.recording_preview_names(recording_id=recording_id)
    try:
        with default_storage.open(detections, "rb") as handle:
            body = handle.read()
    except FileNotFoundError:
        return JsonResponse(
            {"detail": "The first frame's detections are not ready yet."}, status=404
        )
    return HttpResponse(body, content_type="application/json")


@require_POST
@operator_required
def recording_targets(request: HttpRequest, recording_id: int) -> HttpResponse:
    """Store the clicked targets and start processing in manual mode."""
    recording = _recording_or_404(recording_id)
    form = RecordingTargetsForm(request.POST)
    if not form.is_valid():
        for problem in form.errors.get("targets", []):
            messages.error(request, problem)
        return redirect("recording_detail", recording_id=recording.pk)
    try:
        # One transaction: targets refused for a busy recording are not kept.
        with transaction.atomic():
            services.recording_targets_set(
                recording=recording, targets=form.cleaned_data["targets"]
            )
            services.recording_enqueue(recording=recording, mode=Recording.Mode.MANUAL)
    except errors.DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"{len(recording.targets)} target sperm stored; preprocessing is queued.",
        )
    return redirect("recording_detail", recording_id=recording.pk)


@require_POST
@operator_required
def recording_rerun(request: HttpRequest, recording_id: int) -> HttpResponse:
    """Run preprocessing again; its clips are replaced, never duplicated."""
    recording = _recording_or_404(recording_id)
    mode = request.POST.get("mode") or recording.mode
    try:
        services.recording_enqueue(recording=recording, mode=mode)
    except errors.DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Preprocessing is queued again.")
    return redirect("recording_detail", recording_id=recording.pk)


@require_GET
@operator_required
def clip_review_page(request: HttpRequest) -> HttpResponse:
    """Pending clips in a grid, each playing; approve or reject by click or key
    (static/js/review.js posts to /api/clips/<id>/review/)."""
    clips, n_pending = selectors.clips_for_review()
    for clip in clips:
        marker = marker_positions(clip.track, clip.size_px)
        clip.marker_json = json.dumps(marker if marker else [])
    return render(
        request,
        "recordings/review.html",
        {
            "clips": clips,
            "n_pending": n_pending,
            "rejected": selectors.clips_rejected_recently(),
            "review_on": selectors.site_settings().review_new_clips,
        },
    )
