"""Sign-ins are throttled after repeated failures, and a bad token is a 401 with a
challenge (issue "hardening", part 7)."""

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from annotation import services

pytestmark = pytest.mark.django_db
PASSWORD = "right-pass-123"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_LOCKOUT_SECONDS = 900
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user():
    return services.expert_create(username="guessme", password=PASSWORD)


def _login(client, password):
    return client.post("/login/", {"username": "guessme", "password": password})


def test_thirty_wrong_passwords_then_the_right_one_is_refused(user):
    client = Client()
    for _ in range(30):
        response = _login(client, "wrong")
        assert response.status_code in (200, 429)
    response = _login(client, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert int(response["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


def test_four_failures_still_let_the_right_password_in_and_reset_the_count(user):
    client = Client()
    for _ in range(4):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 302
    other = Client()
    for _ in range(4):  # the success cleared the earlier four
        _login(other, "wrong")
    assert _login(other, PASSWORD).status_code == 302


def test_the_lockout_ends_after_its_time(user, monkeypatch):
    import time

    client = Client()
    for _ in range(5):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 429
    later = time.time() + 901
    monkeypatch.setattr(time, "time", lambda: later)
    assert _login(client, PASSWORD).status_code == 302


def test_the_token_endpoint_is_throttled_the_same_way(user):
    client = APIClient()
    for _ in range(5):
        response = client.post(
            "/api/auth/token/", {"username": "guessme", "password": "no"}
        )
        assert response.status_code == 400
    response = client.post(
        "/api/auth/token/", {"username": "guessme", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.json()["detail"]


def test_the_token_endpoint_still_hands_out_tokens(user):
    response = APIClient().post(
        "/api/auth/token/", {"username": "guessme", "password": PASSWORD}
    )
    assert response.status_code == 200 and len(response.json()["token"]) == 40
    odd = APIClient().post("/api/auth/token/", [1, 2], format="json")
    assert odd.status_code == 400


def test_a_bad_token_is_401_with_a_challenge():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.post("/api/clips/next/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Invalid token."
