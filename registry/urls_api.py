"""Registry API URLs (under /api/registry/), administrators only."""

from django.urls import path, re_path

from annotation.apis import api_not_found
from registry import apis

urlpatterns = [
    path("profiles/", apis.ProfileListApi.as_view(), name="api-registry-profiles"),
    path("runs/", apis.RunCollectionApi.as_view(), name="api-registry-runs"),
    path("runs/<int:run_id>/", apis.RunDetailApi.as_view(), name="api-registry-run"),
    path(
        "runs/<int:run_id>/cancel/",
        apis.RunCancelApi.as_view(),
        name="api-registry-run-cancel",
    ),
    path(
        "runs/<int:run_id>/retry/",
        apis.RunRetryApi.as_view(),
        name="api-registry-run-retry",
    ),
    path("versions/", apis.VersionListApi.as_view(), name="api-registry-versions"),
    path(
        "versions/rollback/",
        apis.VersionRollbackApi.as_view(),
        name="api-registry-rollback",
    ),
    path(
        "versions/<int:version_id>/",
        apis.VersionDetailApi.as_view(),
        name="api-registry-version",
    ),
    path(
        "versions/<int:version_id>/promote/",
        apis.VersionPromoteApi.as_view(),
        name="api-registry-promote",
    ),
    path(
        "versions/<int:version_id>/predictions/",
        apis.PredictionListApi.as_view(),
        name="api-registry-predictions",
    ),
    path("snapshots/", apis.SnapshotListApi.as_view(), name="api-registry-snapshots"),
    re_path(r"^[\s\S]*$", api_not_found),  # any path, newlines too
]
