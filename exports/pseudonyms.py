"""Pseudonyms in exports: keyed HMAC of the instance's ids (PSEUDONYM_KEY, a
secret from the environment), so they stay the same within an instance, differ
across instances, and cannot be reversed without the key.

Threat model. A bundle's recipient (a researcher, a journal's reviewer) has the
bundle and not the key. Without the key a pseudonym is 64 bits of HMAC-SHA256
output: nothing links it to an id, and rows come in pseudonym order, not id
order. Whoever holds the key (the exporting instance's operators) can map every
pseudonym back by hashing each id: the key is as sensitive as the database.
``key_id`` names the key without revealing it, so two bundles can be seen to
come from the same key (the same instance) or not.
"""

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


def key_id() -> str:
    """A fingerprint of PSEUDONYM_KEY (it cannot be turned back into the key)."""
    digest = hmac.new(
        settings.PSEUDONYM_KEY.encode(), b"spermgrade pseudonym key id", hashlib.sha256
    )
    return digest.hexdigest()[:16]


def clip_pseudonym(clip_id: int) -> str:
    return _cached("C", clip_id, settings.PSEUDONYM_KEY)


def expert_pseudonym(user_id: int) -> str:
    return _cached("E", user_id, settings.PSEUDONYM_KEY)


def recording_pseudonym(recording_id: int) -> str:
    return pseudonym("R", recording_id)
