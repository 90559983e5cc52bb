from django.urls import path

from dashboards import views

urlpatterns = [
    path("", views.panel_dashboard, name="panel_dashboard"),
    path("experts/<int:expert_id>/", views.expert_dashboard, name="expert_dashboard"),
    path("clips/", views.clip_explorer, name="clip_explorer"),
    path("clips/<int:clip_id>/", views.clip_review, name="clip_review"),
    path("models/", views.model_dashboard, name="model_dashboard"),
    path(
        "models/<int:version_id>/",
        views.model_dashboard,
        name="model_dashboard_version",
    ),
    path("models/<int:version_id>/clips/", views.model_clips, name="model_clips"),
]
