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


def _login_from(client, address: str, username="guessme", password="wrong"):
    return client.post(
        "/login/",
        {"username": username, "password": password},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR=address,
    )


def test_behind_a_trusted_proxy_a_strangers_guesses_never_lock_out_the_user(
    user, settings
):
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    stranger, owner = Client(), Client()
    for _ in range(8):
        _login_from(stranger, "203.0.113.9")
    assert _login_from(stranger, "203.0.113.9", password=PASSWORD).status_code == 429
    # The proxy forwards each client's own address: the owner's is not locked.
    assert _login_from(owner, "198.51.100.7", password=PASSWORD).status_code == 302


def test_without_a_trusted_proxy_a_forged_forwarded_address_changes_nothing(
    user, settings
):
    settings.TRUSTED_PROXIES = []
    client = Client()
    for i in range(6):
        _login_from(client, f"203.0.113.{i}")  # a new forged address each time
    assert _login_from(client, "198.51.100.7", password=PASSWORD).status_code == 429


def test_many_usernames_from_one_address_lock_that_address(user, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 12
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    client = Client()
    for i in range(12):  # two guesses each: no username reaches its own limit
        _login_from(client, "203.0.113.9", username=f"someone{i // 2}")
    response = _login_from(client, "203.0.113.9", password=PASSWORD)
    assert response.status_code == 429
    assert "from this address" in response.content.decode()
    # Another address still signs in.
    assert _login_from(Client(), "198.51.100.7", password=PASSWORD).status_code == 302


def test_a_site_wide_flood_of_failures_pauses_sign_ins_for_the_minute(
    user, settings, monkeypatch
):
    import time

    settings.LOGIN_GLOBAL_FAILURES_PER_MINUTE = 10
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    start = (int(time.time() // 60) + 1) * 60 + 5  # early in a minute
    monkeypatch.setattr(time, "time", lambda: start)
    for i in range(10):
        _login_from(Client(), f"203.0.113.{i}", username=f"user{i}")
    response = _login_from(Client(), "198.51.100.7", password=PASSWORD)
    assert response.status_code == 429
    assert "on this site" in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 56
    monkeypatch.setattr(time, "time", lambda: start + 60)
    assert _login_from(Client(), "198.51.100.7", password=PASSWORD).status_code == 302


def test_web_processes_share_one_count_through_the_cache(redis_server, tmp_path):
    """Two separate processes (two web workers) on one Redis cache: 3 failures in
    one and 2 in the other reach the limit of 5 together."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    cache_url = redis_server.url.rsplit("/", 1)[0] + "/7"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="true",
        SPERMGRADE_VAR_DIR=str(tmp_path / "var"),
        CACHE_URL=cache_url,
        LOGIN_FAILURE_LIMIT="5",
    )
    script = (
        "import sys, django; django.setup()\n"
        "from django.core.cache import cache\n"
        "from annotation.services import throttle\n"
        "who = dict(username='guessme', address='203.0.113.9')\n"
        "if sys.argv[1] == 'clear': cache.clear()\n"
        "for _ in range(int(sys.argv[2])): throttle.login_failure_record(**who)\n"
        "print(throttle.login_wait_seconds(**who))\n"
    )

    def web_process(action: str, failures: int) -> int:
        result = subprocess.run(
            [sys.executable, "-c", script, action, str(failures)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return int(result.stdout.split()[-1])

    assert web_process("clear", 3) == 0
    assert web_process("keep", 1) == 0  # four in all
    assert web_process("keep", 1) > 0  # the fifth, in a third process, locks
