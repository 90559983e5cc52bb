"""Single flight for the panel statistics refresh: at most one refresh queued or
running, however many page views find the dashboard stale.

The guard is one ``PanelStatisticsClaim`` row, taken and given back by conditional
updates, so two requests (or a request and beat) cannot both win it. A claim ends
when its refresh finishes, when the broker refuses the message, when the reaper
finds the refresh's worker dead (heartbeat subject ``statistics:panel``), or, for
a message that never started (lost with its broker or queue),
PANEL_STATISTICS_CLAIM_SECONDS after it was taken while no live worker is on it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from annotation.models import PanelStatisticsClaim
from annotation.services.enqueue import PANEL_STATISTICS_REFRESH, task_send
from jobs.models import Heartbeat
from jobs.reaper import lost_sentence
from jobs.selectors import subject_alive

REFRESH_SUBJECT = "statistics:panel"  # the refresh task's heartbeat (workers.tasks)


def _claims():
    PanelStatisticsClaim.objects.get_or_create(key="panel")
    return PanelStatisticsClaim.objects.filter(key="panel")


def panel_statistics_claim_take(*, token: str = "") -> str | None:
    """The claim's token if this caller now holds it, else None.

    With ``token`` (the one a queued task was sent with): still held by it. Without:
    a new claim, won only when nobody holds one, or the holder's claim expired and
    no live worker is refreshing.
    """
    now = timezone.now()
    if token:
        held = _claims().filter(token=token).update(claimed_at=now)
        return token if held else None
    free = Q(token="")
    if not subject_alive(subject=REFRESH_SUBJECT):
        expired = now - timedelta(seconds=settings.PANEL_STATISTICS_CLAIM_SECONDS)
        free |= Q(claimed_at__lt=expired)
    token = uuid.uuid4().hex
    won = _claims().filter(free).update(token=token, claimed_at=now)
    return token if won else None


def panel_statistics_claim_release(*, token: str) -> bool:
    """Give the claim back (only if ``token`` still holds it)."""
    return bool(
        PanelStatisticsClaim.objects.filter(key="panel", token=token).update(
            token="", claimed_at=None
        )
    )


def panel_statistics_refresh_queue() -> bool:
    """Queue one refresh unless one is already queued or running; True if this
    call queued it."""
    token = panel_statistics_claim_take()
    if token is None:
        return False
    task_send(
        name=PANEL_STATISTICS_REFRESH,
        kwargs={"claim": token},
        on_unreachable=lambda _message: panel_statistics_claim_release(token=token),
    )
    return True


def statistics_lost(row: Heartbeat) -> str:
    """The reaper's handler: the refresh's worker died, so its claim ends now."""
    PanelStatisticsClaim.objects.filter(key="panel").update(token="", claimed_at=None)
    return lost_sentence(row, "refreshing the panel statistics") + " Claim released."
