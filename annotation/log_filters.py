"""Logging: an ordinary client error is one line, not a traceback.

Django logs every 4xx answer that came from an exception (PermissionDenied,
Http404, SuspiciousOperation, a bad request) on ``django.request`` *with* the
exception's traceback. Those are the client's mistakes, not the server's: this
filter (installed on the console handler in settings.LOGGING) keeps the one
line ("Forbidden: /grade/") and drops the traceback. Server errors (5xx) keep
theirs.
"""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        client_error = status is not None and status < 500
        from_django = record.name.startswith(("django.request", "django.security"))
        if from_django and client_error and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True
