"""One reaper for every kind of background job (run by beat every minute).

A heartbeat that is neither closed nor fresh belongs to a task whose process died
(killed, out of memory, machine gone). The reaper claims the row once (a
conditional update, so two reapers cannot both act) and hands it to the handler
its kind registered: the handler ends the job failed with a sentence that says
what happened (``lost_sentence``), or queues it again once where the settings
say so, and returns what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.utils import timezone

from jobs.models import Heartbeat
from jobs.selectors import (
    REQUEUED,
    heartbeats_dead,
    subject_rows_by_liveness,
)

__all__ = ["REQUEUED", "delivery_admit", "jobs_reap", "kind_register", "lost_sentence"]

logger = logging.getLogger(__name__)

LostHandler = Callable[[Heartbeat], str]
_HANDLERS: dict[str, LostHandler] = {}


def kind_register(kind: str, handler: LostHandler) -> None:
    """``handler(row)`` ends the lost job of ``kind`` (``lost_sentence`` says why);
    returns what it did."""
    _HANDLERS[kind] = handler


def kinds_registered() -> set[str]:
    return set(_HANDLERS)


def lost_sentence(row: Heartbeat, doing: str) -> str:
    who = row.worker or row.host
    last = row.beat_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"The worker {doing} ({who}, process {row.pid}) stopped reporting at "
        f"{last}: it was killed, ran out of memory or lost its machine."
    )


def jobs_reap(*, timeout_s: float | None = None) -> list[dict]:
    """Hand every dead heartbeat to its kind; returns what was done for each."""
    return _reap(heartbeats_dead(timeout_s=timeout_s))


def delivery_admit(subject: str, *, max_deaths: int) -> str | None:
    """Before a task starts on ``subject``: None to go ahead, or why not.

    A live worker on it: this is a duplicate delivery. Its earlier workers died
    ``max_deaths`` times: the job is given up (ended by its kind's handler) rather
    than killing workers for ever. Otherwise the dead workers' heartbeats are
    closed as superseded, so the reaper does not end the job this delivery runs.
    """
    alive, dead = subject_rows_by_liveness(subject=subject)
    if alive:
        return "a live worker is on it"
    if not dead:
        return None  # the usual case: one read, nothing to close
    earlier = Heartbeat.objects.filter(
        subject=subject, ended_at__isnull=True, outcome=SUPERSEDED
    ).count()
    if len(dead) + earlier >= max_deaths:
        _reap(dead)
        return f"its workers died {len(dead) + earlier} times; given up"
    Heartbeat.objects.filter(pk__in=[r.pk for r in dead]).update(
        reaped_at=timezone.now(), outcome=SUPERSEDED
    )
    return None


SUPERSEDED = "delivered again"


def _reap(rows: list[Heartbeat]) -> list[dict]:
    done = []
    for row in rows:
        claimed = Heartbeat.objects.filter(pk=row.pk, reaped_at__isnull=True).update(
            reaped_at=timezone.now()
        )
        if not claimed:
            continue
        handler = _HANDLERS.get(row.kind)
        try:
            outcome = handler(row) if handler else f"no handler for {row.kind}"
        except Exception:
            # Leave the row for the next pass rather than lose the job.
            Heartbeat.objects.filter(pk=row.pk).update(reaped_at=None)
            logger.exception("reaping %s failed", row)
            continue
        Heartbeat.objects.filter(pk=row.pk).update(outcome=outcome[:2000])
        done.append(
            {"subject": row.subject, "attempt": row.attempt, "outcome": outcome}
        )
    return done
