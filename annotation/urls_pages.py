"""Page URLs (login, logout, home, grading page, admin landing page, clip video)."""

from django.urls import path

from annotation import oidc, second_factor, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.ThrottledLoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("account/second-factor/", second_factor.second_factor, name="second_factor"),
    # Sign-in through the identity provider (annotation/oidc.py); 404 while off.
    path(
        "oidc/authenticate/",
        oidc.SignInStart.as_view(),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        oidc.SignInCallback.as_view(),
        name="oidc_authentication_callback",
    ),
    path("grade/", views.grade, name="grade"),
    path("feedback/", views.feedback, name="feedback"),
    path("admin-home/", views.admin_home, name="admin_home"),
    path("media/clips/<int:clip_id>/video.mp4", views.clip_video, name="clip_video"),
    path(
        "media/shown/<slug:handle>/video.mp4",
        views.presentation_video,
        name="presentation_video",
    ),
]
