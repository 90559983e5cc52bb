"""Response headers every page gets, and a database outage answered as one.

``SecurityHeadersMiddleware``: a Content-Security-Policy (scripts, styles,
media and connections from this site only; plotly's injected styles allowed;
no plugins, no framing) and a Permissions-Policy that turns off the browser
features SpermGrade never uses. Both are settings (CONTENT_SECURITY_POLICY,
PERMISSIONS_POLICY) for a lab that must loosen or tighten them.

``DatabaseUnavailableMiddleware``: when the database cannot be reached (a
restart, a network cut) a page or API call answers 503 with Retry-After, not a
500 that reads like a bug; the API's exception handler does the same for DRF
views (``annotation.apis.exception_handler``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
DATABASE_DOWN = (
    "The database cannot be reached right now (it may be restarting); nothing "
    f"was changed. Try again in {RETRY_AFTER_SECONDS} seconds."
)


def database_unavailable(exc: BaseException) -> bool:
    """An error of reaching the database, not of the request's data."""
    return isinstance(exc, OperationalError | InterfaceError)


def database_down_response(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": DATABASE_DOWN}, status=503)
    else:
        response = HttpResponse(DATABASE_DOWN, status=503, content_type="text/plain")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not database_unavailable(exception):
            return None
        logger.error("database unavailable: %s", type(exception).__name__)
        return database_down_response(request)


class SecurityHeadersMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault(
                "Content-Security-Policy", settings.CONTENT_SECURITY_POLICY
            )
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault(
                "Permissions-Policy", settings.PERMISSIONS_POLICY
            )
        return response
