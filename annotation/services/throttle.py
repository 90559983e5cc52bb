"""Writes: failed sign-in attempts, so guessing passwords or tokens is throttled.

Three counts, each an atomic counter in Django's cache (shared by every web
process through CACHE_URL; production refuses to start without one):

- one username from one client address: after ``LOGIN_FAILURE_LIMIT`` failures
  that pair is refused for ``LOGIN_LOCKOUT_SECONDS``; a success clears it;
- one client address, any usernames: after ``LOGIN_ADDRESS_FAILURE_LIMIT``
  failures within the lockout time, that address is refused as long (guessing
  across many usernames);
- the whole site: past ``LOGIN_GLOBAL_FAILURES_PER_MINUTE`` failures in a minute,
  sign-ins wait for the next minute, so a flood cannot make the server hash
  passwords without end.

The client address is the one the trusted proxy forwards (``client_address``),
so behind the compose proxy a stranger's guesses never lock out a real user on
another address.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time

from django.conf import settings
from django.core.cache import cache


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or, when that is a trusted proxy
    (TRUSTED_PROXIES), the right-most X-Forwarded-For entry that is not one."""
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = _trusted_networks()
    if not trusted or not _is_trusted(remote, trusted):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part.strip() for part in forwarded.split(",")]):
        if not hop:
            continue
        if not _is_trusted(hop, trusted):
            return hop[:64]
    return remote


def _trusted_networks() -> list:
    return [
        ipaddress.ip_network(value, strict=False)
        for value in getattr(settings, "TRUSTED_PROXIES", [])
    ]


def _is_trusted(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _key(kind: str, *parts: str) -> str:
    raw = "|".join(parts).encode()
    return f"login-{kind}:" + hashlib.sha256(raw).hexdigest()


def _pair(username: str, address: str) -> tuple[str, str]:
    return (username.strip().lower()[:150], address)


def _count(key: str, timeout: int) -> int:
    """Add one to a counter that expires ``timeout`` s after its first count."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _lock(key: str, seconds: float) -> None:
    cache.set(key, time.time() + seconds, timeout=int(seconds) + 1)


def _left(key: str) -> int:
    until = cache.get(key)
    if not until:
        return 0
    return max(0, int(until - time.time()) + 1)


def login_refusal(*, username: str, address: str) -> tuple[int, str]:
    """(seconds until this username may try again from this address, which
    count refuses: 'pair', 'address' or 'site'); (0, '') when it may try now."""
    waits = {
        "site": _left(_key("site-lock")),
        "address": _left(_key("address-lock", address)),
        "pair": _left(_key("pair-lock", *_pair(username, address))),
    }
    wait = max(waits.values())
    reason = next((name for name, left in waits.items() if left), "")
    return wait, reason


def login_wait_seconds(*, username: str, address: str) -> int:
    """Seconds until this username may try again from this address (0: now)."""
    return login_refusal(username=username, address=address)[0]


def login_failure_record(*, username: str, address: str) -> None:
    window = settings.LOGIN_LOCKOUT_SECONDS
    pair = _pair(username, address)
    if _count(_key("pair", *pair), window) >= settings.LOGIN_FAILURE_LIMIT:
        _lock(_key("pair-lock", *pair), window)
    if _count(_key("address", address), window) >= (
        settings.LOGIN_ADDRESS_FAILURE_LIMIT
    ):
        _lock(_key("address-lock", address), window)
    minute = int(time.time() // 60)
    if _count(_key("site", str(minute)), 120) >= (
        settings.LOGIN_GLOBAL_FAILURES_PER_MINUTE
    ):
        _lock(_key("site-lock"), (minute + 1) * 60 - time.time())


def login_success_record(*, username: str, address: str) -> None:
    pair = _pair(username, address)
    cache.delete_many([_key("pair", *pair), _key("pair-lock", *pair)])


def login_refusal_message(seconds: int, reason: str = "pair") -> str:
    minutes = max(1, round(seconds / 60))
    wait = f"about {minutes} minute{'s' if minutes != 1 else ''}"
    if reason == "site":
        return (
            "Too many failed sign-ins on this site in the last minute. Try again "
            f"in {wait}."
        )
    if reason == "address":
        return (
            "Too many failed sign-ins from this address. Try again in "
            f"{wait}, or ask an administrator."
        )
    return (
        "Too many failed sign-ins for this account from this address. Try again in "
        f"{wait}, or ask an administrator to reset the password."
    )
