"""Opaque per-presentation handles: what an expert knows a clip by.

A presentation is one showing of a clip to one expert: the first one, or the
hidden repeat. Experts never see database ids: every clip, vote and change URL
they get names the presentation by a handle, so a hidden repeat looks like any
other clip (a new handle, not the earlier clip's id) and the expert's own vote
list cannot be matched against it.

A handle is the 128-bit block (expert id, clip id, repeat bit) passed through a
four-round Feistel network keyed by HMAC-SHA256 with a key derived from
SECRET_KEY (a pseudorandom permutation: without the key a handle says nothing
about the clip, and a forged or altered handle decodes to an expert it does not
belong to, or to nothing), written as 26 lowercase base32 characters. Handles
need no table and stay the same for a presentation across requests, so an
offline retry of a vote finds its clip again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

_ROUNDS = 4
_HALF = 2**64
_LENGTH = 26  # 16 bytes in base32, without padding
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


@dataclass(frozen=True)
class Presentation:
    expert_id: int
    clip_id: int
    repeat: bool


@lru_cache(maxsize=4)
def _round_keys(secret: str) -> tuple[bytes, ...]:
    root = hmac.new(
        secret.encode(), b"spermgrade.presentation-handle", hashlib.sha256
    ).digest()
    return tuple(
        hmac.new(root, bytes([i]), hashlib.sha256).digest() for i in range(_ROUNDS)
    )


def _f(key: bytes, half: int) -> int:
    digest = hmac.new(key, half.to_bytes(8, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def presentation_handle(*, expert_id: int, clip_id: int, repeat: bool) -> str:
    """The handle of the expert's first showing (``repeat`` False) or hidden
    repeat of a clip. Cached: an answer names each presentation several times
    (its id, its clip, its change and video URLs)."""
    return _encode(settings.SECRET_KEY, expert_id, clip_id, bool(repeat))


@lru_cache(maxsize=8192)
def _encode(secret: str, expert_id: int, clip_id: int, repeat: bool) -> str:
    if not (0 <= expert_id < _HALF and 0 <= clip_id < _HALF // 2):
        raise ValueError("expert or clip id out of range for a handle")
    left, right = expert_id, (clip_id << 1) | int(repeat)
    for key in _round_keys(secret):
        left, right = right, left ^ _f(key, right)
    block = left.to_bytes(8, "big") + right.to_bytes(8, "big")
    return base64.b32encode(block).decode().rstrip("=").lower()


def presentation_parse(handle: object) -> Presentation | None:
    """The presentation a handle names, or None for anything not a handle."""
    if not isinstance(handle, str) or len(handle) != _LENGTH:
        return None
    if not set(handle) <= _ALPHABET:
        return None
    try:
        block = base64.b32decode(handle.upper() + "======")
    except ValueError:
        return None
    if base64.b32encode(block).decode().rstrip("=").lower() != handle:
        return None  # the spare bits of the last character must be zero
    left, right = int.from_bytes(block[:8], "big"), int.from_bytes(block[8:], "big")
    for key in reversed(_round_keys(settings.SECRET_KEY)):
        left, right = right ^ _f(key, left), left
    return Presentation(expert_id=left, clip_id=right >> 1, repeat=bool(right & 1))


def presentation_for(*, expert_id: int, handle: object) -> Presentation | None:
    """The presentation if the handle is one of this expert's, else None."""
    found = presentation_parse(handle)
    if found is None or found.expert_id != expert_id or found.clip_id == 0:
        return None
    return found


def short_label(handle: str) -> str:
    """The few characters the grading page shows as the clip's name."""
    return handle[:8]
