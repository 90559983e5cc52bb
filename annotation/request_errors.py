"""The one place that turns errors in a request itself into a clear 4xx.

A body nested too deeply to parse, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, too
many fields or files, a number too large for any column, other suspicious input:
each is the client's mistake, so it gets a status and a sentence saying what to
change, never a 500. The API's exception handler and the page handler for 400
(``config/urls.py``) both ask ``request_error_response``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)


def request_error(exc: BaseException) -> tuple[int, str] | None:
    """(HTTP status, message) for an error caused by the request, else None."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, (
            "The request body is too large"
            + (f" (the limit is {limit:,} bytes)" if limit else "")
            + "; send less data at once."
        )
    if isinstance(exc, TooManyFieldsSent):
        return 400, (
            "The request has too many fields (the limit is "
            f"{settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,}); send fewer at once."
        )
    if isinstance(exc, TooManyFilesSent):
        return 400, (
            "The request has too many files (the limit is "
            f"{settings.DATA_UPLOAD_MAX_NUMBER_FILES:,}); send fewer at once."
        )
    if isinstance(exc, SuspiciousOperation):
        return 400, "The request was refused as malformed."
    if isinstance(exc, RecursionError):
        return 400, "The request body is nested too deeply to read."
    if isinstance(exc, OverflowError):
        return 400, "A number in the request is too large."
    return None
