"""Admins' second factor: a TOTP authenticator app (django-otp).

An admin who has set one up gives a code after every sign-in (local or through
the identity provider) before any other page; with ADMIN_SECOND_FACTOR=required
every admin sets one up first. Until then the admin's session reaches only this
page, sign-out and static files: pages redirect here, the session API answers
403. Experts and operators are not asked. API tokens are their own credential
and are not affected (they are issued to scripts by superusers).
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import django_otp
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from annotation.roles import user_is_admin

DEVICE_NAME = "authenticator app"
OPEN_PATHS = ("/account/second-factor/", "/logout/", "/login/", "/static/")


# Set in an admin's session once it is known they have no second factor (while
# optional): later requests of that session skip the device query. Signing out
# ends the session; setting one up signs the session in with it.
NO_DEVICE_KEY = "_second_factor_none"


def second_factor_needed(request: HttpRequest) -> bool:
    """An admin signed in without a second factor who must give one."""
    user = request.user
    if not getattr(user, "is_authenticated", False) or not user_is_admin(user=user):
        return False
    if user.is_verified():
        return False
    if settings.ADMIN_SECOND_FACTOR == "required":
        return True
    if request.session.get(NO_DEVICE_KEY) == user.pk:
        return False
    if django_otp.user_has_device(user, confirmed=True):
        return True
    request.session[NO_DEVICE_KEY] = user.pk
    return False


class SecondFactorMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(OPEN_PATHS) or not second_factor_needed(
            request
        ):
            return self.get_response(request)
        message = "Give your second factor first: " + reverse("second_factor")
        if request.path_info.startswith("/api/"):
            return JsonResponse(
                {"detail": message, "code": "second_factor_required"}, status=403
            )
        if request.method not in {"GET", "HEAD"}:
            raise PermissionDenied(message)
        target = reverse("second_factor") + "?next=" + quote(request.get_full_path())
        return redirect(target)


def _device_for(user) -> tuple[TOTPDevice, bool]:
    """(the device to check the code against, whether it is being set up)."""
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if confirmed is not None:
        return confirmed, False
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device, True


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


@require_http_methods(["GET", "POST"])
@login_required
def second_factor(request: HttpRequest) -> HttpResponse:
    if not user_is_admin(user=request.user):
        raise PermissionDenied("The second factor is for administrators' accounts.")
    device, setting_up = _device_for(request.user)
    error = ""
    status = 200
    if request.method == "POST":
        allowed, _ = device.verify_is_allowed()
        code = "".join(request.POST.get("code", "").split())
        if not allowed:
            error = "Too many wrong codes: wait a little, then give the current one."
            status = 429
        elif not (code.isdigit() and len(code) == device.digits):
            error = f"The code is the {device.digits} digits your app shows now."
            status = 400
        elif device.verify_token(code):
            if setting_up:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            django_otp.login(request, device)
            request.session.pop(NO_DEVICE_KEY, None)
            return redirect(_next_url(request))
        else:
            error = (
                "That code is not the current one; try the next code your app shows."
            )
            status = 400
    context = {
        "setting_up": setting_up,
        "error": error,
        "next": _next_url(request),
        "required": settings.ADMIN_SECOND_FACTOR == "required",
    }
    if setting_up:
        context["key"] = base64.b32encode(device.bin_key).decode().rstrip("=")
        context["config_url"] = device.config_url
    return render(request, "registration/second_factor.html", context, status=status)
