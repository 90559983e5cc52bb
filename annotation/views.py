"""Server-rendered pages: home, the grading page, the admin landing page, clip video.

The grading page is a template plus plain JavaScript (static/js/grade.js) that talks
to the REST API; these views only decide who may see what. Blind grading starts
here: the grading page's HTML carries no votes, distributions or model output.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_safe

from annotation import selectors, services
from annotation.handles import presentation_for
from annotation.models import Clip
from annotation.request_errors import request_error
from annotation.roles import user_is_admin, user_is_expert, user_is_operator
from jobs.selectors import silent_queues


class LogoutView(auth_views.LogoutView):
    """Log out on POST (Django's rule); a GET, e.g. a typed /logout/, asks to confirm
    instead of answering 405."""

    http_method_names = ["get", "post", "options"]

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect("login")
        return render(request, "registration/logout_confirm.html")


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person where their work is: admins to their landing page, experts
    to the grading page, operators to the recordings they upload."""
    if user_is_admin(user=request.user):
        return redirect("admin_home")
    if user_is_expert(user=request.user):
        return redirect("grade")
    if user_is_operator(user=request.user):
        return redirect("recording_list")
    raise PermissionDenied(
        "Your account has no role in SpermGrade yet: it is neither an expert nor an "
        "administrator. Ask an administrator to add you to the experts group."
    )


@require_GET
@login_required
@ensure_csrf_cookie
def grade(request: HttpRequest) -> HttpResponse:
    """The grading page. Only members of the experts group may grade."""
    if not user_is_expert(user=request.user):
        raise PermissionDenied(
            "Only experts grade clips, and this account is not in the experts group. "
            "Administrators see results on the admin pages instead."
        )
    profile = getattr(request.user, "expert_profile", None)
    context = {
        "expert_code": getattr(profile, "code", "") or request.user.get_username(),
        "undo_seconds": settings.VOTE_UNDO_SECONDS,
        "next_url": reverse("api-clip-next"),
        "votes_url": reverse("api-votes"),
        "release_url": reverse("api-clip-release"),
        "feedback_on": selectors.site_settings().expert_feedback,
    }
    return render(request, "annotation/grade.html", context)


@require_GET
@login_required
def admin_home(request: HttpRequest) -> HttpResponse:
    """Landing page for administrators: where to manage data and read the API."""
    if not user_is_admin(user=request.user):
        raise PermissionDenied(
            "This page is for administrators. Experts grade clips on the grading page."
        )
    return render(
        request,
        "annotation/admin_home.html",
        {
            "is_expert": user_is_expert(user=request.user),
            "silent_queues": silent_queues(),
        },
    )


@require_GET
@login_required
def feedback(request: HttpRequest) -> HttpResponse:
    """An expert's standing against the rest of the panel on their recent final
    votes, when an admin turned it on (Site settings). Never a model output."""
    if not user_is_expert(user=request.user):
        raise PermissionDenied("This page is for experts.")
    if not selectors.site_settings().expert_feedback:
        raise Http404("Feedback after voting is turned off on this site.")
    return render(
        request,
        "annotation/feedback.html",
        {
            "feedback": selectors.expert_feedback(expert=request.user),
            "undo_seconds": settings.VOTE_UNDO_SECONDS,
        },
    )


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a single ``Range: bytes=a-b`` header, else None.

    Raises ValueError for a range that lies outside the file (answered with 416).
    """
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    else:  # "bytes=-N": the last N bytes
        first, last = max(0, size - int(last_text)), size - 1
    if first > last or first >= size:
        raise ValueError(header)
    return first, last


@require_safe
@login_required
def clip_video(request: HttpRequest, clip_id: int) -> HttpResponse:
    """A clip's mp4 by clip id, for admins and operators only (not a public
    media URL). Experts watch by presentation handle (``presentation_video``):
    they never see clip ids.

    Single byte ranges are honoured so a plain ``<video src>`` (e.g. in the admin)
    can seek; the grading page downloads the whole file instead.
    """
    if not (user_is_admin(user=request.user) or user_is_operator(user=request.user)):
        raise PermissionDenied(
            "Clip videos by id are for administrators and operators; experts "
            "watch clips on the grading page."
        )
    clip = Clip.objects.filter(pk=clip_id).only("id", "video_file").first()
    return _clip_file(request, clip)


@require_safe
@login_required
def presentation_video(request: HttpRequest, handle: str) -> HttpResponse:
    """A clip's mp4 by the expert's presentation handle: only active clips
    handed to that expert or graded by them."""
    if not user_is_expert(user=request.user):
        raise PermissionDenied("Only experts watch clips by handle.")
    found = presentation_for(expert_id=request.user.pk, handle=handle)
    if found is None:
        raise Http404("No such clip video.")
    from annotation.selectors import clips_visible_to

    clip = (
        clips_visible_to(user=request.user)
        .select_related(None)
        .filter(pk=found.clip_id)
        .only("id", "video_file", "array_file", "fps")
        .first()
    )
    if clip is not None and found.repeat:
        # A fresh encoding: the bytes differ from the first showing's.
        repeat_name = services.clip_repeat_video(clip=clip)
        if repeat_name:
            clip.video_file.name = repeat_name
    return _clip_file(request, clip)


def _clip_file(request: HttpRequest, clip: Clip | None) -> HttpResponse:
    if clip is None or not clip.video_file:
        raise Http404("No such clip video.")
    try:
        handle = clip.video_file.open("rb")
        size = clip.video_file.size
    except FileNotFoundError:
        raise Http404("The clip's video file is missing on the server.") from None
    try:
        byte_range = _byte_range(request.headers.get("Range", ""), size)
    except ValueError:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    if byte_range is None:
        response = FileResponse(handle, content_type="video/mp4")
    else:
        first, last = byte_range
        with handle:
            handle.seek(first)
            body = handle.read(last - first + 1)
        response = HttpResponse(body, status=206, content_type="video/mp4")
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response


class ThrottledLoginView(auth_views.LoginView):
    """Django's login page; repeated failures are throttled (services.throttle)."""

    redirect_authenticated_user = True

    def _who(self) -> dict:
        return {
            "username": self.request.POST.get("username", ""),
            "address": services.client_address(self.request),
        }

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "oidc_enabled": settings.OIDC_ENABLED,
            "oidc_provider_name": settings.OIDC_PROVIDER_NAME,
            "signin_failed": self.request.GET.get("signin") == "failed",
        }

    def post(self, request, *args, **kwargs):
        wait, reason = services.login_refusal(**self._who())
        if wait:
            # An unbound form: the password is not even checked while refused.
            form = self.get_form_class()(
                request=request, initial={"username": self._who()["username"]}
            )
            response = self.render_to_response(
                self.get_context_data(
                    form=form,
                    refusal=services.login_refusal_message(wait, reason),
                )
            )
            response.status_code = 429
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        services.login_failure_record(**self._who())
        return super().form_invalid(form)

    def form_valid(self, form):
        services.login_success_record(**self._who())
        return super().form_valid(form)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """Django's 400 handler: request errors (a body too large is 413) as a page, or
    as JSON under /api/."""
    status, message = request_error(exception) or (
        400,
        "The request could not be understood.",
    )
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return render(
        request, "400.html", {"message": message, "status": status}, status=status
    )
