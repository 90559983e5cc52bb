"""The settings' environment readers: each variable through one small helper
that raises ``ImproperlyConfigured`` naming the variable on a bad value."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the environment variable {name}.")
    if not value.strip():
        # An empty path would silently mean the working directory.
        raise ImproperlyConfigured(
            f"{name} is set but empty; give it a value or unset it to use the default."
        )
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off."
    )


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} must be at most {maximum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(name: str, url: str) -> dict:
    """Parse ``sqlite:///path`` or ``postgres://user:pass@host:port/db`` for Django."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        elif path.startswith("/"):
            path = path[1:]
        if not path:
            raise ImproperlyConfigured(f"{name}={url!r} names no SQLite file.")
        if not os.path.isabs(path):
            path = str(BASE_DIR / path)  # relative to the checkout
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        dbname = unquote(parsed.path.lstrip("/"))
        if not dbname:
            raise ImproperlyConfigured(f"{name}={url!r} names no database.")
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        try:
            port = parsed.port
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: the port is not a number between 0 and 65535."
            ) from None
        options.update(_prepared_statement_options(options))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": dbname,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": unquote(parsed.hostname or ""),
            "PORT": str(port or ""),
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"{name}={url!r}: use sqlite:///path/to/file.sqlite3 or "
        "postgres://user:password@host:5432/dbname."
    )


def _prepared_statement_options(options: dict) -> dict:
    """psycopg's server-side binding and automatic prepared statements: a
    statement run DATABASE_PREPARE_THRESHOLD times on a connection is prepared, so
    PostgreSQL stops parsing and planning it on every request (planning was about
    a third of the database's time per vote). ``off`` keeps Django's default,
    client-side binding and no prepared statements, as a PgBouncer in
    transaction mode needs; a ``prepare_threshold`` in DATABASE_URL wins."""
    raw = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5").strip().lower()
    if "prepare_threshold" in options:
        raw = str(options["prepare_threshold"]).strip().lower()
    if raw in {"off", "none", ""}:
        return {"prepare_threshold": None}
    try:
        threshold = int(raw)
    except ValueError:
        raise ImproperlyConfigured(
            f"DATABASE_PREPARE_THRESHOLD={raw!r}: give a whole number of "
            "executions (0 prepares at once) or off."
        ) from None
    if threshold < 0:
        raise ImproperlyConfigured(
            f"DATABASE_PREPARE_THRESHOLD={threshold}: give 0 or more, or off."
        )
    return {"server_side_binding": True, "prepare_threshold": threshold}


def env_origins(name: str) -> list[str]:
    origins = env_list(name, [])
    for origin in origins:
        if not origin.startswith(("http://", "https://")):
            raise ImproperlyConfigured(
                f"{name}: {origin!r} needs its scheme, e.g. https://{origin}."
            )
    return origins
