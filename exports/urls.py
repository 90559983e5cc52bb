from django.urls import path

from exports import views

urlpatterns = [
    path("", views.export_home, name="export_home"),
    path("start/", views.export_start, name="export_start"),
    path("<int:job_id>/download/", views.export_download, name="export_download"),
    path("import/", views.import_upload, name="import_upload"),
    path("<int:job_id>/cancel/", views.job_cancel, name="export_job_cancel"),
]
