"""Reads: the site settings singleton (cached for a few seconds)."""

from __future__ import annotations

from annotation.models import (
    SiteSetting,
)

SITE_SETTINGS_CACHE_KEY = "annotation:site-settings"


def site_settings() -> SiteSetting:
    """The settings singleton, cached for a few seconds (read on every vote)."""
    from django.core.cache import cache

    return cache.get_or_set(SITE_SETTINGS_CACHE_KEY, SiteSetting.load, timeout=5)
