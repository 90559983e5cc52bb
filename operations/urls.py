from django.urls import path

from operations import views

urlpatterns = [
    path("", views.operations_status, name="operations_status"),
]
