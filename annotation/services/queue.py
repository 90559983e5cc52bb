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
) -> tuple[datetime, set[int]]:
    """Lease (or re-lease) clips to an expert's tab, in order; returns the expiry
    and the ids actually granted.

    One upsert (INSERT ... ON CONFLICT DO UPDATE ... WHERE): a clip the expert
    held before, in this tab or as an expired row, gets its row refreshed; a
    clip another tab of the expert holds live is left to that tab and not
    granted (so 20 tabs asking at once never share a clip: on PostgreSQL the
    second insert waits for the first and then sees its live lease).
    ``created_at`` is stamped a microsecond apart in the given order, so the
    tab's held clips keep coming back first.

    Expired leases never count anywhere (every query asks ``expires_at > now``);
    they are kept for LEASE_KEEP_SECONDS so that a vote sent late from an
    offline outbox still finds the offer; ``release_expired`` deletes older ones
    for this expert in the same call.
    """
    from django.db import connection

    expires_at = now + timedelta(seconds=settings.CLIP_LEASE_SECONDS)
    if release_expired:
        clip_leases_release_expired(
            expert=expert, before=now - timedelta(seconds=settings.LEASE_KEEP_SECONDS)
        )
    if not clips:
        return expires_at, set()
    table = connection.ops.quote_name(ClipLease._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(clips))
    params: list = []
    for position, (clip_id, is_repeat) in enumerate(clips):
        params += [
            expert.pk,
            clip_id,
            expires_at,
            is_repeat,
            holder,
            now + timedelta(microseconds=position),
        ]
    params += [holder, now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS lease (expert_id, clip_id, expires_at, "
            f"is_repeat, holder, created_at) VALUES {rows} "
            "ON CONFLICT (expert_id, clip_id) DO UPDATE SET "
            "expires_at = excluded.expires_at, is_repeat = excluded.is_repeat, "
            "holder = excluded.holder, created_at = excluded.created_at "
            "WHERE lease.holder = %s OR lease.expires_at <= %s "
            "RETURNING clip_id",
            params,
        )
        granted = {row[0] for row in cursor.fetchall()}
    return expires_at, granted


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


def clip_leases_release_tab(
    *, expert, holder: str, before: datetime | None = None
) -> int:
    """A closed tab gives its clips back at once (the page's ``pagehide``
    beacon): its live leases lapse now, so other experts' queues get the clips.
    With ``before``, only leases granted up to then (a reload of the same tab
    may have been granted new ones already). The rows stay, lapsed, for
    LEASE_KEEP_SECONDS, so a grade still waiting in that browser's outbox lands
    when it is sent. Returns how many lapsed."""
    now = timezone.now()
    leases = ClipLease.objects.filter(expert=expert, holder=holder, expires_at__gt=now)
    if before is not None:
        leases = leases.filter(created_at__lte=before)
    return leases.update(expires_at=now)


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
