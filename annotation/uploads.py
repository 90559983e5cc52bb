"""Request bodies bounded before and while they are read.

``UploadGateMiddleware`` looks at a POST's declared length before anything reads
the body (it runs in ``process_request``; the CSRF check, which reads
``request.POST`` and so spools multipart files to disk, runs later in
``process_view``): a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE is refused with
413 (403 at an upload page) unless it goes to the recording upload page from a
signed-in operator or to the bundle import from an admin, whose views allow up to
MAX_UPLOAD_MB.
``LimitedUploadHandler`` (first in FILE_UPLOAD_HANDLERS) counts the bytes as
they stream in and stops the upload once the same limit is passed, so a body
longer than it declared cannot fill the disk either.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from annotation.roles import user_is_admin, user_is_operator


def body_limit_bytes(request: HttpRequest) -> int:
    """The most a request may send: MAX_UPLOAD_MB to a file upload page from a
    user allowed to use it (the multipart envelope adds a little), else the
    small-body limit."""
    if _large_upload(request):
        return settings.MAX_UPLOAD_MB * 1024 * 1024 + 64 * 1024
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _large_upload(request: HttpRequest) -> bool:
    """A recording upload by an operator, or a bundle import by an admin: the two
    pages that take large files (streamed to a temporary file, never memory)."""
    user = getattr(request, "user", None)
    if request.path == reverse("recording_upload"):
        return user_is_operator(user=user)
    if request.path == reverse("import_upload"):
        return user_is_admin(user=user)
    return False


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    if request.path == reverse("recording_upload"):
        message = "Only operators and administrators may upload recordings."
        status = 403
    elif request.path == reverse("import_upload"):
        message = "Only administrators may import bundles."
        status = 403
    else:
        message = (
            f"The request body is too large (the limit is {limit:,} bytes); send "
            "less data at once."
        )
        status = 413
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=status)
    else:
        response = HttpResponse(message, status=status, content_type="text/plain")
    # The body was not read: the connection cannot be reused.
    response["Connection"] = "close"
    return response


class UploadGateMiddleware:
    """Refuse an oversized body from its Content-Length, before it is read.

    An operator's upload to the upload page (an admin's to the import) passes:
    that view refuses one over MAX_UPLOAD_MB itself, also before reading.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if length > limit and not _large_upload(request):
                return _too_large(request, limit)
        return self.get_response(request)


class LimitedUploadHandler(FileUploadHandler):
    """Stops a multipart upload as soon as more than the request's limit has
    arrived (the file parts written so far are removed by Django)."""

    stopped = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding):
        self.limit = body_limit_bytes(self.request)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.stopped = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None
