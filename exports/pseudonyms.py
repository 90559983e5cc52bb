"""Pseudonyms in exports: keyed HMAC of the instance's ids (PSEUDONYM_KEY, a
secret from the environment), so they stay the same within an instance, differ
across instances, and cannot be reversed without the key."""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings


def pseudonym(prefix: str, value: object) -> str:
    key = settings.PSEUDONYM_KEY.encode()
    digest = hmac.new(key, f"{prefix}:{value}".encode(), hashlib.sha256)
    return f"{prefix}-{digest.hexdigest()[:16]}"


# Cached per process (an export names each clip and expert many times); the key
# is part of the cache key, so a changed PSEUDONYM_KEY gives new pseudonyms.
@functools.lru_cache(maxsize=1_000_000)
def _cached(prefix: str, value: object, key: str) -> str:
    digest = hmac.new(key.encode(), f"{prefix}:{value}".encode(), hashlib.sha256)
    return f"{prefix}-{digest.hexdigest()[:16]}"


def clip_pseudonym(clip_id: int) -> str:
    return _cached("C", clip_id, settings.PSEUDONYM_KEY)


def expert_pseudonym(user_id: int) -> str:
    return _cached("E", user_id, settings.PSEUDONYM_KEY)


def recording_pseudonym(recording_id: int) -> str:
    return pseudonym("R", recording_id)
