"""Admins' second factor (TOTP, django-otp): set up, asked after every sign-in,
required for every admin with ADMIN_SECOND_FACTOR=required; experts untouched.
Codes are computed here with RFC 6238's algorithm (django_otp.oath.totp)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, AdminFactory, ExpertFactory

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    done = client.post(
        reverse("login"), {"username": user.username, "password": PASSWORD}
    )
    assert done.status_code == 302
    return client


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    device.refresh_from_db()
    value = totp(
        device.bin_key,
        step=device.step,
        t0=device.t0,
        digits=device.digits,
        drift=offset_steps,
    )
    return str(value).zfill(device.digits)


def test_required_admins_set_one_up_before_any_admin_page(settings):
    settings.ADMIN_SECOND_FACTOR = "required"
    admin = AdminFactory()
    client = login(admin)
    home = reverse("admin_home")
    blocked = client.get(home)
    assert blocked.status_code == 302
    assert blocked["Location"] == reverse("second_factor") + "?next=" + home
    # The session API and the Django admin are closed too.
    api = client.get("/api/clips/")
    assert api.status_code == 403 and api.json()["code"] == "second_factor_required"
    assert client.get("/admin/").status_code == 302
    setup = client.get(blocked["Location"])
    assert setup.status_code == 200
    html = setup.content.decode()
    assert 'id="totp-key"' in html and "otpauth://totp/" in html
    device = TOTPDevice.objects.get(user=admin)
    assert not device.confirmed
    # The same key on every visit until confirmed (the app was set up with it).
    client.get(reverse("second_factor"))
    assert TOTPDevice.objects.filter(user=admin).count() == 1
    wrong = client.post(reverse("second_factor"), {"code": "000000", "next": home})
    if wrong.status_code != 302:  # 000000 is the current code once in a million
        assert (
            wrong.status_code == 400
            and 'id="second-factor-error"' in wrong.content.decode()
        )
        assert client.get(home).status_code == 302
        device.refresh_from_db()
        device.throttling_failure_timestamp = None  # no waiting in a test
        device.save()
    done = client.post(
        reverse("second_factor"), {"code": code_for(device), "next": home}
    )
    assert done.status_code == 302 and done["Location"] == home
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(home).status_code == 200
    assert client.get("/admin/").status_code == 200


def test_an_admin_with_a_device_gives_a_code_after_every_sign_in(settings):
    assert settings.ADMIN_SECOND_FACTOR == "off"
    admin = AdminFactory()
    device = TOTPDevice.objects.create(user=admin, name="app", confirmed=True)
    client = login(admin)
    assert client.get(reverse("admin_home")).status_code == 302
    ask = client.get(reverse("second_factor"))
    assert 'id="totp-key"' not in ask.content.decode()  # the key is never shown again
    done = client.post(reverse("second_factor"), {"code": code_for(device)})
    assert done.status_code == 302
    assert client.get(reverse("admin_home")).status_code == 200
    # Signing out and in again asks again; a used code is not accepted twice.
    client.post(reverse("logout"))
    client = login(admin)
    assert client.get(reverse("admin_home")).status_code == 302
    replay = client.post(reverse("second_factor"), {"code": code_for(device)})
    assert replay.status_code in {400, 429}


def test_an_admin_without_a_device_is_not_asked_while_it_is_optional(settings):
    admin = AdminFactory()
    assert login(admin).get(reverse("admin_home")).status_code == 200


def test_too_many_wrong_codes_wait(settings):
    admin = AdminFactory()
    device = TOTPDevice.objects.create(user=admin, name="app", confirmed=True)
    client = login(admin)
    bad = str((int(code_for(device)) + 500_000) % 1_000_000).zfill(6)
    assert client.post(reverse("second_factor"), {"code": bad}).status_code == 400
    # Right away, even the right code waits (django-otp's growing delay).
    held = client.post(reverse("second_factor"), {"code": code_for(device)})
    assert held.status_code == 429
    assert client.get(reverse("admin_home")).status_code == 302


def test_experts_are_never_asked(settings):
    settings.ADMIN_SECOND_FACTOR = "required"
    expert = ExpertFactory()
    client = login(expert)
    assert client.get(reverse("grade")).status_code == 200
    assert client.get(reverse("second_factor")).status_code == 403


def test_a_malformed_code_or_next_is_a_clear_answer(settings):
    settings.ADMIN_SECOND_FACTOR = "required"
    admin = AdminFactory()
    client = login(admin)
    client.get(reverse("second_factor"))
    bad = client.post(reverse("second_factor"), {"code": "abc"})
    assert bad.status_code == 400 and "6 digits" in bad.content.decode()
    device = TOTPDevice.objects.get(user=admin)
    away = client.post(
        reverse("second_factor"),
        {"code": code_for(device), "next": "https://evil.example/"},
    )
    assert away.status_code == 302 and away["Location"] == reverse("home")


def test_a_device_added_later_is_asked_for_at_the_next_sign_in(settings):
    admin = AdminFactory()
    client = login(admin)
    assert client.get(reverse("admin_home")).status_code == 200  # no device yet
    TOTPDevice.objects.create(user=admin, name="app", confirmed=True)
    client.post(reverse("logout"))
    client = login(admin)
    assert client.get(reverse("admin_home")).status_code == 302
