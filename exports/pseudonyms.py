"""Pseudonyms in exports: keyed HMAC of the instance's ids (PSEUDONYM_KEY, a
secret from the environment), so they stay the same within an instance, differ
across instances, and cannot be reversed without the key."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def pseudonym(prefix: str, value: object) -> str:
    key = settings.PSEUDONYM_KEY.encode()
    digest = hmac.new(key, f"{prefix}:{value}".encode(), hashlib.sha256)
    return f"{prefix}-{digest.hexdigest()[:16]}"


def clip_pseudonym(clip_id: int) -> str:
    return pseudonym("C", clip_id)


def expert_pseudonym(user_id: int) -> str:
    return pseudonym("E", user_id)


def recording_pseudonym(recording_id: int) -> str:
    return pseudonym("R", recording_id)
