"""Settings come from the environment; a bad value stops start-up naming the variable.

Start-up is checked for real: ``django.setup()`` in a subprocess with a chosen
environment. The parsing helpers are also called directly.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from config import settings as config_settings
from tests.conftest import REPO_ROOT

# Variables the settings read; cleared so the subprocess sees only what a test sets.
_SETTINGS_VARIABLES = (
    "CACHE_URL",
    "TRUSTED_PROXIES",
    "DATABASE_URL",
    "DATABASE_CONN_MAX_AGE",
    "DATABASE_PREPARE_THRESHOLD",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "VOTES_PER_CLIP",
    "REPEAT_SHARE",
    "LOG_LEVEL",
    "TRUST_X_FORWARDED_PROTO",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SPERMGRADE_VAR_DIR",
    "DJANGO_SETTINGS_MODULE",
)

_REPORT = (
    "import json, django\n"
    "django.setup()\n"
    "from django.conf import settings as s\n"
    "db = s.DATABASES['default']\n"
    "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']),\n"
    "    'broker': s.CELERY_BROKER_URL, 'backend': s.CELERY_RESULT_BACKEND,\n"
    "    'folders': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'media': str(s.MEDIA_ROOT),\n"
    "    'votes_per_clip': s.VOTES_PER_CLIP, 'debug': s.DEBUG,\n"
    "    'secret': s.SECRET_KEY, 'hosts': s.ALLOWED_HOSTS,\n"
    "    'proxy': s.SECURE_PROXY_SSL_HEADER}))\n"
)


def start_django(
    tmp_path: Path, *, debug_unset: bool = False, **env: str
) -> subprocess.CompletedProcess:
    """Run django.setup() in a fresh interpreter with only ``env`` configured.

    DEBUG is on unless a test sets it (as ``make demo`` does), or ``debug_unset``
    leaves it out to see the production default.
    """
    if not debug_unset:
        env = {"DEBUG": "true", **env}
    # Production needs a shared cache for the sign-in throttle; these tests are
    # about other settings (test_debug_off_needs_a_shared_cache is about it).
    env = {"CACHE_URL": "local", **env}
    environ = {k: v for k, v in os.environ.items() if k not in _SETTINGS_VARIABLES}
    environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    environ["SPERMGRADE_VAR_DIR"] = str(tmp_path / "var")
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", _REPORT],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0, f"start-up should have failed: {result.stdout}"
    assert "ImproperlyConfigured" in result.stderr, result.stderr[-2000:]
    last_line = result.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last_line, last_line


def started(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- start-up in a subprocess ---------------------------------------------------


def test_defaults_use_sqlite_under_var_and_the_filesystem_broker(tmp_path):
    report = started(start_django(tmp_path))
    var = tmp_path / "var"
    assert report["engine"] == "django.db.backends.sqlite3"
    assert report["name"] == str(var / "spermgrade.sqlite3")
    assert report["broker"] == "filesystem://"
    assert report["folders"]["data_folder_in"] == str(var / "celery" / "queue")
    assert report["backend"] == f"file://{var / 'celery' / 'results'}"
    assert report["media"] == str(var / "media")
    assert report["votes_per_clip"] == 40
    assert report["debug"] is True


def test_debug_is_off_unless_set(tmp_path):
    assert_refused(start_django(tmp_path, debug_unset=True), "SECRET_KEY")
    report = started(
        start_django(tmp_path, debug_unset=True, SECRET_KEY="k" * 60 + "-not-change")
    )
    assert report["debug"] is False


def _deploy_check(tmp_path, *options: str, **env: str):
    """``manage.py check --deploy`` with production settings and ``env``."""
    environ = {k: v for k, v in os.environ.items() if k not in _SETTINGS_VARIABLES}
    environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SPERMGRADE_VAR_DIR=str(tmp_path / "var"),
        DEBUG="false",
        SECRET_KEY="x9" * 30 + "-production-secret",
        ALLOWED_HOSTS="grade.example.org",
        CACHE_URL="redis://cache.example.org:6379/2",
        **env,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", *options],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_without_a_warning(tmp_path):
    result = _deploy_check(
        tmp_path,
        "--fail-level",
        "WARNING",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
        TRUST_X_FORWARDED_PROTO="true",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _compose_web_environment() -> dict[str, str]:
    """The web container's environment as docker compose builds it from the files
    in the repository: the image's ENV, then .env (.env.example with every
    change-me replaced, as the README says), then the service's environment with
    its ${...} filled in from .env."""

    def chosen(name: str, value: str) -> str:  # what the README has one choose
        if value != "change-me":
            return value
        if name == "SECRET_KEY":
            return secrets.token_urlsafe(50)
        return secrets.token_hex(16)

    example = (REPO_ROOT / ".env.example").read_text()
    dotenv = {
        name: chosen(name, value)
        for name, value in re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", example, re.M)
    }
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    image = {
        name: value
        for line in re.findall(r"^ENV (.*)$", dockerfile, re.M)
        for name, value in re.findall(r"([A-Z][A-Z0-9_]*)=(\S+)", line)
        if "$" not in value
    }

    def filled(value) -> str:
        def one(match: re.Match) -> str:
            name, default = match.group(1), match.group(3)
            if dotenv.get(name):
                return dotenv[name]
            assert match.group(2) == ":-", f"{name} must be set in .env"
            return default

        pattern = r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}"
        return re.sub(pattern, one, str(value)).replace("$$", "$")

    web = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    service = {k: filled(v) for k, v in web["web"]["environment"].items()}
    return {**image, **dotenv, **service}


def test_the_deploy_check_is_clean_under_the_compose_settings(tmp_path):
    """docker compose's web container, settings and all, passes check --deploy
    without a warning (issue 27 part 5)."""
    compose = _compose_web_environment()
    assert compose["DEBUG"] == "false" and compose["TRUST_X_FORWARDED_PROTO"] == "true"
    assert compose["DATABASE_URL"].startswith("postgres://")
    environ = {
        k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}
    }
    environ.update(compose, DJANGO_SETTINGS_MODULE="config.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout


def test_demo_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = started(start_django(tmp_path))
    second = started(start_django(tmp_path))
    key_file = tmp_path / "var" / "secret_key"
    assert len(first["secret"]) >= 50
    assert first["secret"] == second["secret"] == key_file.read_text().strip()
    assert key_file.stat().st_mode & 0o077 == 0


def test_redis_broker_is_also_the_default_result_backend(tmp_path):
    url = "redis://127.0.0.1:6399/0"
    report = started(start_django(tmp_path, CELERY_BROKER_URL=url))
    assert report["broker"] == url
    assert report["backend"] == url
    # No filesystem folders; Redis re-delivers only after a fold's time limit.
    assert report["folders"] == {"visibility_timeout": 6 * 3600 + 600}


def test_forwarded_proto_is_trusted_only_when_asked(tmp_path):
    assert started(start_django(tmp_path))["proxy"] is None
    report = started(start_django(tmp_path, TRUST_X_FORWARDED_PROTO="true"))
    assert report["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_votes_per_clip_that_is_not_a_number_stops_start_up(tmp_path):
    result = start_django(tmp_path, VOTES_PER_CLIP="abc")
    assert_refused(result, "VOTES_PER_CLIP", "'abc'", "whole number")


def test_votes_per_clip_of_zero_stops_start_up(tmp_path):
    assert_refused(start_django(tmp_path, VOTES_PER_CLIP="0"), "VOTES_PER_CLIP")


def test_debug_that_is_not_a_boolean_stops_start_up(tmp_path):
    result = start_django(tmp_path, DEBUG="maybe")
    assert_refused(result, "DEBUG", "'maybe'", "true/false")


def test_unsupported_database_url_stops_start_up(tmp_path):
    result = start_django(tmp_path, DATABASE_URL="mysql://u:p@db:3306/spermgrade")
    assert_refused(result, "DATABASE_URL", "postgres://", "sqlite:///")


def test_debug_off_without_secret_key_refuses_to_start(tmp_path):
    result = start_django(tmp_path, DEBUG="false")
    assert_refused(result, "SECRET_KEY", "DEBUG off")
    assert not (tmp_path / "var" / "secret_key").exists()


def test_debug_off_with_the_example_placeholder_key_refuses_to_start(tmp_path):
    result = start_django(tmp_path, DEBUG="false", SECRET_KEY="change-me")
    assert_refused(result, "SECRET_KEY", "placeholder")


def test_debug_off_with_a_secret_key_starts(tmp_path):
    key = "k" * 60
    report = started(
        start_django(tmp_path, DEBUG="0", SECRET_KEY=key, ALLOWED_HOSTS="a.org, b.org")
    )
    assert report["debug"] is False
    assert report["secret"] == key
    assert report["hosts"] == ["a.org", "b.org"]


def test_empty_media_root_stops_start_up_instead_of_using_the_working_directory(
    tmp_path,
):
    assert_refused(start_django(tmp_path, MEDIA_ROOT=""), "MEDIA_ROOT", "empty")


def test_csrf_origin_without_scheme_stops_start_up(tmp_path):
    result = start_django(tmp_path, CSRF_TRUSTED_ORIGINS="grading.example.org")
    assert_refused(result, "CSRF_TRUSTED_ORIGINS", "https://grading.example.org")


def test_unknown_log_level_stops_start_up(tmp_path):
    assert_refused(start_django(tmp_path, LOG_LEVEL="LOUD"), "LOG_LEVEL")


def test_repeat_share_above_half_stops_start_up(tmp_path):
    result = start_django(tmp_path, REPEAT_SHARE="0.9")
    assert_refused(result, "REPEAT_SHARE", "at most 0.5")


# --- helpers called directly --------------------------------------------------------


def test_postgres_url_is_split_into_django_fields(monkeypatch):
    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    monkeypatch.delenv("DATABASE_PREPARE_THRESHOLD", raising=False)
    db = config_settings.database_from_url(
        "DATABASE_URL",
        "postgresql://grader:p%40ss%2Fword@db.lab:6543/sperm?sslmode=require",
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("sperm", "grader", "p@ss/word")
    assert (db["HOST"], db["PORT"]) == ("db.lab", "6543")
    assert db["OPTIONS"] == {
        "sslmode": "require",
        "server_side_binding": True,
        "prepare_threshold": 5,
    }
    assert db["CONN_MAX_AGE"] == 60


@pytest.mark.parametrize(
    ("raw", "in_url", "expected"),
    [
        ("0", None, {"server_side_binding": True, "prepare_threshold": 0}),
        (" 12 ", None, {"server_side_binding": True, "prepare_threshold": 12}),
        ("off", None, {"prepare_threshold": None}),
        ("None", None, {"prepare_threshold": None}),
        # A prepare_threshold in the URL wins over the variable.
        ("7", "off", {"prepare_threshold": None}),
        ("off", "3", {"server_side_binding": True, "prepare_threshold": 3}),
    ],
)
def test_prepared_statements_follow_the_variable_or_the_url(
    monkeypatch, raw, in_url, expected
):
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", raw)
    query = f"?prepare_threshold={in_url}" if in_url else ""
    db = config_settings.database_from_url("DATABASE_URL", f"postgres://u@h/db{query}")
    assert db["OPTIONS"] == expected


@pytest.mark.parametrize("raw", ["-1", "often", "2.5"])
def test_a_bad_prepare_threshold_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", raw)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_PREPARE_THRESHOLD"):
        config_settings.database_from_url("DATABASE_URL", "postgres://u@h/db")


def test_postgres_url_with_a_bad_port_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL.*port"):
        config_settings.database_from_url("DATABASE_URL", "postgres://u@h:99999/db")


def test_postgres_url_without_database_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL.*no database"):
        config_settings.database_from_url("DATABASE_URL", "postgres://u@h:5432/")


def test_sqlite_urls_resolve_relative_paths_against_the_repository():
    relative = config_settings.database_from_url("DATABASE_URL", "sqlite:///var/x.db")
    absolute = config_settings.database_from_url("DATABASE_URL", "sqlite:////tmp/x.db")
    assert relative["NAME"] == str(config_settings.BASE_DIR / "var" / "x.db")
    assert absolute["NAME"] == "/tmp/x.db"


def test_sqlite_url_without_a_file_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL.*no SQLite file"):
        config_settings.database_from_url("DATABASE_URL", "sqlite:///")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("YES", True), (" on ", True), ("0", False), ("off", False)],
)
def test_boolean_variables_accept_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SPERMGRADE_TEST_FLAG", raw)
    assert config_settings.env_bool("SPERMGRADE_TEST_FLAG", not expected) is expected


def test_unset_variables_take_their_defaults(monkeypatch):
    monkeypatch.delenv("SPERMGRADE_TEST_UNSET", raising=False)
    assert config_settings.env_int("SPERMGRADE_TEST_UNSET", 7) == 7
    assert config_settings.env_float("SPERMGRADE_TEST_UNSET", 0.5) == 0.5
    assert config_settings.env_list("SPERMGRADE_TEST_UNSET", ["a"]) == ["a"]
    assert config_settings.env_str("SPERMGRADE_TEST_UNSET", "x") == "x"


def test_required_variable_without_default_names_itself(monkeypatch):
    monkeypatch.delenv("SPERMGRADE_TEST_UNSET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SPERMGRADE_TEST_UNSET"):
        config_settings.env_str("SPERMGRADE_TEST_UNSET")


def test_lists_drop_blank_items(monkeypatch):
    monkeypatch.setenv("SPERMGRADE_TEST_LIST", " a.org ,, b.org ,")
    assert config_settings.env_list("SPERMGRADE_TEST_LIST", []) == ["a.org", "b.org"]


def test_float_below_minimum_names_the_bound(monkeypatch):
    monkeypatch.setenv("SPERMGRADE_TEST_FLOAT", "-1")
    with pytest.raises(ImproperlyConfigured, match="SPERMGRADE_TEST_FLOAT.*at least 0"):
        config_settings.env_float("SPERMGRADE_TEST_FLOAT", 1.0, minimum=0.0)


def test_debug_off_needs_a_shared_cache_or_an_explicit_local_one(tmp_path):
    production = dict(DEBUG="false", SECRET_KEY="p7" * 30 + "-production-secret")
    assert_refused(
        start_django(tmp_path, CACHE_URL="", **production),
        "CACHE_URL",
        "every web process shares",
    )
    assert started(start_django(tmp_path, CACHE_URL="local", **production))
    assert started(
        start_django(tmp_path, CACHE_URL="redis://127.0.0.1:6399/2", **production)
    )
    assert_refused(
        start_django(tmp_path, TRUSTED_PROXIES="10.0.0.0/8,proxy", **production),
        "TRUSTED_PROXIES",
        "'proxy'",
    )


def test_the_deploy_check_passes_with_production_defaults(tmp_path):
    """DEBUG off and nothing else about HTTPS set: redirect and HSTS are on by
    default (Django's W004 and W008 were warned before)."""
    result = _deploy_check(tmp_path)
    said = result.stdout + result.stderr
    assert result.returncode == 0, said
    # Including subdomains is left to the operator outside compose (W005 remains
    # as the reminder; compose turns it on); preloading is silenced (settings).
    for check in ("W004", "W008", "W012", "W016"):
        assert f"security.{check}" not in said, said


def test_sign_in_through_a_provider_without_its_issuer_stops_start_up(tmp_path):
    result = start_django(tmp_path, OIDC_CLIENT_ID="spermgrade", OIDC_CLIENT_SECRET="s")
    assert_refused(result, "OIDC_ISSUER")


def test_an_unknown_second_factor_rule_or_metrics_network_stops_start_up(tmp_path):
    assert_refused(
        start_django(tmp_path, ADMIN_SECOND_FACTOR="sometimes"), "ADMIN_SECOND_FACTOR"
    )
    assert_refused(
        start_django(tmp_path, METRICS_ALLOWED_NETWORKS="monitoring"),
        "METRICS_ALLOWED_NETWORKS",
    )
