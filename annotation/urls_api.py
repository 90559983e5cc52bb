"""REST API URLs (under /api/). See /api/docs/ for the browsable documentation."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotation import apis

urlpatterns = [
    path("clips/next/", apis.ClipNextApi.as_view(), name="api-clip-next"),
    path("clips/release/", apis.ClipReleaseApi.as_view(), name="api-clip-release"),
    path("clips/", apis.ClipListApi.as_view(), name="api-clip-list"),
    path("clips/<int:clip_id>/", apis.ClipDetailApi.as_view(), name="api-clip-detail"),
    path(
        "clips/<int:clip_id>/review/",
        apis.ClipReviewApi.as_view(),
        name="api-clip-review",
    ),
    path(
        "recordings/<int:recording_id>/motility/",
        apis.RecordingMotilityApi.as_view(),
        name="api-recording-motility",
    ),
    path("votes/", apis.VoteCollectionApi.as_view(), name="api-votes"),
    path(
        "votes/<slug:vote_ref>/", apis.VoteDetailApi.as_view(), name="api-vote-detail"
    ),
    path(
        "distributions/",
        apis.DistributionListApi.as_view(),
        name="api-distributions",
    ),
    path("auth/token/", apis.ThrottledObtainAuthToken.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        # The split view serves its start-up script as a file: no inline script,
        # so the Content-Security-Policy needs no 'unsafe-inline' for scripts.
        SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    re_path(r"^[\s\S]*$", apis.api_not_found),  # any path, newlines too
]
