"""Writes: clip leases (what the queue hands out) and the site settings it reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from annotation.models import (
    ClipLease,
    SiteSetting,
)
from annotation.selectors.site import SITE_SETTINGS_CACHE_KEY


def clip_leases_grant(
    *,
    expert,
    holder: str,
    clips: list[tuple[int, bool]],
    now: datetime,
    release_expired: bool = True,
) -> datetime:
    """Lease (or re-lease) clips to an expert's tab, in order; returns the expiry.

    One upsert (INSERT ... ON CONFLICT DO UPDATE): a clip the expert held before,
    in this tab or as an expired row, gets its row refreshed. ``created_at`` is
    stamped a microsecond apart in the given order, so the tab's held clips keep
    coming back first and a refreshed expired row never jumps ahead of them.

    Expired leases never count anywhere (every query asks ``expires_at > now``), so
    deleting them is housekeeping: ``release_expired`` does it for this expert in
    the same call; callers do it now and then rather than on every request.
    """
    expires_at = now + timedelta(seconds=settings.CLIP_LEASE_SECONDS)
    if release_expired:
        clip_leases_release_expired(expert=expert, before=now)
    if clips:
        ClipLease.objects.bulk_create(
            [
                ClipLease(
                    expert=expert,
                    clip_id=clip_id,
                    is_repeat=is_repeat,
                    holder=holder,
                    expires_at=expires_at,
                    created_at=now + timedelta(microseconds=position),
                )
                for position, (clip_id, is_repeat) in enumerate(clips)
            ],
            update_conflicts=True,
            unique_fields=["expert", "clip"],
            update_fields=["expires_at", "is_repeat", "holder", "created_at"],
        )
    return expires_at


def clip_leases_release_expired(*, expert=None, before: datetime | None = None) -> int:
    """Delete expired leases so their clips return to the pool.

    Expired repeat leases are kept: a vote sent late for a hidden repeat must still
    be recognised as one (vote_create looks for the lease).
    """
    expired = ClipLease.objects.filter(
        expires_at__lte=before or timezone.now(), is_repeat=False
    )
    if expert is not None:
        expired = expired.filter(expert=expert)
    deleted, _ = expired.delete()
    return deleted


def site_setting_update(*, reveal_panel_after_vote: bool) -> SiteSetting:
    setting = SiteSetting.load()
    setting.reveal_panel_after_vote = reveal_panel_after_vote
    setting.save(update_fields=["reveal_panel_after_vote"])
    site_settings_forget()
    return setting


def site_settings_forget() -> None:
    """Drop this process's cached copy (others refresh within 5 s)."""
    from django.core.cache import cache

    cache.delete(SITE_SETTINGS_CACHE_KEY)
