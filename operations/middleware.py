"""``/healthz`` and ``/readyz``, answered before any other middleware runs.

First in MIDDLEWARE on purpose: the callers are the proxy's health checker and
docker's, which reach gunicorn directly over plain HTTP with a Host header such
as ``web:8000``. Later middleware would refuse that host (ALLOWED_HOSTS) or
redirect it to HTTPS (SECURE_SSL_REDIRECT), and the session and CSRF layers have
nothing to do here. Neither answer needs a user or holds any data.

- ``/healthz``: the process is up and serving requests. No database, no broker:
  cheap enough to ask every few seconds.
- ``/readyz``: database reachable, migrations applied, broker reachable, media
  storage writable (``operations.health``); 503 naming each failing part.
- ``/metrics``: Prometheus metrics (``operations.metrics``), only to a direct
  caller from METRICS_ALLOWED_NETWORKS; anyone else gets 404, as if it did not
  exist.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from operations import health, metrics

PATHS = {"/healthz", "/readyz", "/metrics"}


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def healthz() -> HttpResponse:
    return _no_store(HttpResponse("ok\n", content_type="text/plain"))


def readyz() -> HttpResponse:
    checks = health.readiness()
    failing = [part for part, result in checks.items() if result != health.OK]
    body = {"status": "failing" if failing else "ok", "failing": failing}
    return _no_store(
        JsonResponse({**body, "checks": checks}, status=503 if failing else 200)
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics.scrape_allowed(request.META):
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    body, content_type = metrics.exposition()
    return _no_store(HttpResponse(body, content_type=content_type))


class HealthMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in PATHS:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
            return response
        if request.path_info == "/metrics":
            return metrics_view(request)
        return healthz() if request.path_info == "/healthz" else readyz()
