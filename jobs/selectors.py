"""Reads: is anyone working on a job, and which queues have a worker."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from jobs.models import Heartbeat, WorkerPresence


def pid_dead_here(*, host: str, pid: int) -> bool:
    """True only when the process ran on this machine and is gone (or a zombie):
    a killed worker child is known dead at once, not after the timeout."""
    from jobs.liveness import host_name

    if host != host_name():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def fresh_after(now: datetime | None = None) -> datetime:
    """A heartbeat after this moment means its process is alive."""
    now = now or timezone.now()
    return now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_SECONDS)


def _open(subject: str, attempt: int | None):
    rows = Heartbeat.objects.filter(
        subject=subject, ended_at__isnull=True, reaped_at__isnull=True
    )
    return rows if attempt is None else rows.filter(attempt=attempt)


def subject_alive(
    *, subject: str, attempt: int | None = None, exclude: int | None = None
) -> bool:
    """A task working on ``subject`` (that attempt, or any; not the heartbeat
    ``exclude``, the caller's own) is alive now."""
    rows = _open(subject, attempt).filter(beat_at__gt=fresh_after())
    return any(
        not pid_dead_here(host=row.host, pid=row.pid)
        for row in rows.exclude(pk=exclude)
    )


# A lost-job handler that queues the job again says so with an outcome starting
# thus; ``requeued_before`` reads it, so a job is re-queued once.
REQUEUED = "queued again"


def requeued_before(*, subject: str) -> bool:
    """An earlier loss of ``subject`` was already queued again (once per job)."""
    return Heartbeat.objects.filter(
        subject=subject, outcome__startswith=REQUEUED
    ).exists()


def subjects_alive(*, prefix: str) -> set[str]:
    """The subjects starting with ``prefix`` that a live task is working on."""
    rows = Heartbeat.objects.filter(
        subject__startswith=prefix,
        ended_at__isnull=True,
        reaped_at__isnull=True,
        beat_at__gt=fresh_after(),
    )
    return {r.subject for r in rows if not pid_dead_here(host=r.host, pid=r.pid)}


def heartbeats_dead(*, timeout_s: float | None = None) -> list[Heartbeat]:
    """Open heartbeats whose process stopped beating (older than the timeout), or
    died on this machine and had time for its worker to deliver the task again (a
    killed child's task is re-delivered by the worker's main process once
    CELERY_WORKER_LOST_WAIT has passed: that new delivery, not the reaper, takes
    the job on)."""
    now = timezone.now()
    stale = (
        now - timedelta(seconds=timeout_s)
        if timeout_s is not None
        else fresh_after(now)
    )
    redelivery_s = (
        3 * settings.JOB_HEARTBEAT_SECONDS
        + getattr(settings, "CELERY_WORKER_LOST_WAIT", 10.0)
        + 2
    )
    grace = now - timedelta(seconds=redelivery_s)
    open_rows = Heartbeat.objects.filter(ended_at__isnull=True, reaped_at__isnull=True)
    dead = list(open_rows.filter(beat_at__lt=stale).order_by("beat_at"))
    recent = open_rows.filter(beat_at__gte=stale, beat_at__lt=grace)
    dead += [r for r in recent if pid_dead_here(host=r.host, pid=r.pid)]
    return dead


def subject_rows_by_liveness(
    *, subject: str
) -> tuple[list[Heartbeat], list[Heartbeat]]:
    """The open heartbeats of ``subject`` in one read, as (alive, dead): dead ones
    are stale or their process is gone from this machine."""
    stale = fresh_after()
    alive, dead = [], []
    for row in _open(subject, None):
        gone = row.beat_at <= stale or pid_dead_here(host=row.host, pid=row.pid)
        (dead if gone else alive).append(row)
    return alive, dead


def last_heartbeat(*, subject: str) -> Heartbeat | None:
    return Heartbeat.objects.filter(subject=subject).order_by("-beat_at").first()


def queues_silent(*, queues: list[str] | tuple[str, ...]) -> dict[str, datetime | None]:
    """The queues no running worker has reported on for WORKER_SILENT_AFTER_SECONDS,
    with when one last did (None: never). Workers are few: read in Python, the
    same on SQLite and PostgreSQL."""
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_SILENT_AFTER_SECONDS)
    workers = list(WorkerPresence.objects.all())
    silent = {}
    for queue in queues:
        serving = [w for w in workers if queue in (w.queues or [])]
        if any(w.stopped_at is None and w.seen_at > cutoff for w in serving):
            continue
        silent[queue] = max((w.seen_at for w in serving), default=None)
    return silent


def silent_queues(*, also: tuple[str, ...] = ()) -> list[dict]:
    """The queues to warn about: "cpu" (every job needs it), any queue a worker has
    ever served (a GPU worker that went away), and ``also`` (queues jobs wait on)."""
    served = {q for w in WorkerPresence.objects.all() for q in (w.queues or [])}
    watched = sorted({"cpu", *served, *also})
    return [
        {"queue": queue, "last_seen": last}
        for queue, last in queues_silent(queues=watched).items()
    ]
