"""Top-level URLs: the annotation app owns the pages and the API; the dashboards
live under /dashboards/, the model registry under /registry/ (API:
/api/registry/)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboards/", include("dashboards.urls")),
    path("registry/", include("registry.urls")),
    path("api/registry/", include("registry.urls_api")),
    path("exports/", include("exports.urls")),
    path("operations/", include("operations.urls")),
    path("", include("annotation.urls")),
]

# Request errors (too large, too many fields, malformed) as a clear 4xx page.
handler400 = "annotation.views.bad_request"
