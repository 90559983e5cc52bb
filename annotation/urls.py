"""The app's URLs: pages (urls_pages.py) and the REST API (urls_api.py)."""

from django.urls import include, path

urlpatterns = [
    path("api/", include("annotation.urls_api")),
    path("recordings/", include("annotation.urls_recordings")),
    path("", include("annotation.urls_pages")),
]
