"""Writes: failed sign-in attempts, so guessing passwords or tokens is throttled.

After ``LOGIN_FAILURE_LIMIT`` failed attempts for one username from one address
within ``LOGIN_LOCKOUT_SECONDS``, further attempts are refused until that time has
passed since the first failure; a successful sign-in clears the count. Counts live
in Django's cache: set ``CACHE_URL`` to a Redis server in production so that every
web process shares them (the default, a per-process memory cache, counts per
process).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


def _key(*, username: str, address: str) -> str:
    raw = f"{username.strip().lower()}|{address}".encode()
    return "login-failures:" + hashlib.sha256(raw).hexdigest()


def login_wait_seconds(*, username: str, address: str) -> int:
    """Seconds until this username may try again from this address (0: now)."""
    record = cache.get(_key(username=username, address=address))
    if not record:
        return 0
    count, first = record
    if count < settings.LOGIN_FAILURE_LIMIT:
        return 0
    return max(0, int(first + settings.LOGIN_LOCKOUT_SECONDS - time.time()) + 1)


def login_failure_record(*, username: str, address: str) -> None:
    key = _key(username=username, address=address)
    count, first = cache.get(key) or (0, time.time())
    cache.set(key, (count + 1, first), timeout=settings.LOGIN_LOCKOUT_SECONDS)


def login_success_record(*, username: str, address: str) -> None:
    cache.delete(_key(username=username, address=address))


def login_refusal_message(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return (
        "Too many failed sign-ins for this account from this address. Try again in "
        f"about {minutes} minute{'s' if minutes != 1 else ''}, or ask an "
        "administrator to reset the password."
    )
