from django.urls import path

from registry import views

urlpatterns = [
    path("", views.registry_home, name="registry_home"),
    path("runs/start/", views.run_start, name="registry_run_start"),
    path("runs/<int:run_id>/", views.run_detail, name="registry_run"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="registry_run_cancel"),
    path("runs/<int:run_id>/retry/", views.run_retry, name="registry_run_retry"),
    path("versions/compare/", views.versions_compare, name="registry_compare"),
    path("versions/rollback/", views.version_rollback, name="registry_rollback"),
    path("versions/<int:version_id>/", views.version_detail, name="registry_version"),
    path(
        "versions/<int:version_id>/promote/",
        views.version_promote,
        name="registry_promote",
    ),
]
