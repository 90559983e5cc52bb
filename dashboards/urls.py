from django.urls import path

from dashboards import views

urlpatterns = [
    path("", views.panel_dashboard, name="panel_dashboard"),
    path("experts/<int:expert_id>/", views.expert_dashboard, name="expert_dashboard"),
    path("clips/", views.clip_explorer, name="clip_explorer"),
]
