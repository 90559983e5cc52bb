"""Recording pages (administrators and operators): upload, list, detail, targets."""

from django.urls import path

from annotation import views_recordings as views

urlpatterns = [
    path("", views.recording_list, name="recording_list"),
    path("upload/", views.recording_upload, name="recording_upload"),
    path("review/", views.clip_review_page, name="clip_review"),
    path("<int:recording_id>/", views.recording_detail, name="recording_detail"),
    path("<int:recording_id>/status/", views.recording_status, name="recording_status"),
    path(
        "<int:recording_id>/first-frame.png",
        views.recording_first_frame,
        name="recording_first_frame",
    ),
    path(
        "<int:recording_id>/detections.json",
        views.recording_detections,
        name="recording_detections",
    ),
    path(
        "<int:recording_id>/targets/",
        views.recording_targets,
        name="recording_targets",
    ),
    path("<int:recording_id>/rerun/", views.recording_rerun, name="recording_rerun"),
]
