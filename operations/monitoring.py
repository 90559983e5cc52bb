"""What the background side is doing now: queue lengths from the broker, the
workers and their last report, the tasks running and the jobs lost recently.

Read by the admins' operations page (``operations.views``) and by the Prometheus
metrics (``operations.metrics``). Every read is bounded: queues and workers are
few, running tasks are the open heartbeats, recent losses are a fixed number.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from kombu import Connection
from kombu.exceptions import ChannelError

from annotation.models import Job
from jobs.models import Heartbeat, WorkerPresence
from jobs.selectors import fresh_after
from registry.models import RunStatus, TrainingRun

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 3
RECENT_LOST = 20


def queue_names(workers: list[dict] | None = None) -> list[str]:
    """Every queue a task is routed to (settings.CELERY_TASK_ROUTES), and any
    queue a worker reports serving (``workers()``' rows when given, else read)."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    if workers is None:
        served = {q for w in WorkerPresence.objects.all() for q in (w.queues or [])}
    else:
        served = {q for w in workers for q in w["queues"]}
    return sorted(routed | served | {settings.CELERY_TASK_DEFAULT_QUEUE})


def queue_lengths(queues: list[str] | None = None) -> dict[str, int] | None:
    """{queue: messages waiting} from the broker (Redis or the embedded
    filesystem transport); None when the broker cannot be reached. A queue the
    broker has never seen (Redis deletes an empty list) waits with 0."""
    queues = queue_names() if queues is None else queues
    lengths: dict[str, int] = {}
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS or {},
            connect_timeout=BROKER_TIMEOUT_SECONDS,
        ) as conn:
            conn.ensure_connection(max_retries=0)
            channel = conn.default_channel
            for queue in queues:
                try:
                    declared = channel.queue_declare(queue=queue, passive=True)
                except ChannelError:
                    lengths[queue] = 0
                    continue
                lengths[queue] = int(declared.message_count)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        logger.warning("monitoring: broker unreachable", exc_info=exc)
        return None
    return lengths


def workers(now=None) -> list[dict]:
    """Every worker that ever reported: its queues, when it last reported (its
    main process writes every WORKER_PRESENCE_SECONDS) and whether it is up."""
    now = now or timezone.now()
    silent_after = timedelta(seconds=settings.WORKER_SILENT_AFTER_SECONDS)
    rows = []
    for worker in WorkerPresence.objects.order_by("name"):
        up = worker.stopped_at is None and now - worker.seen_at < silent_after
        rows.append(
            {
                "name": worker.name,
                "queues": list(worker.queues or []),
                "host": worker.host,
                "pid": worker.pid,
                "started_at": worker.started_at,
                "seen_at": worker.seen_at,
                "seen_age_s": max(0.0, (now - worker.seen_at).total_seconds()),
                "stopped_at": worker.stopped_at,
                "state": "up" if up else ("stopped" if worker.stopped_at else "silent"),
            }
        )
    return rows


def running_tasks(now=None) -> list[dict]:
    """The tasks at work now: heartbeats neither closed nor reaped and fresh."""
    now = now or timezone.now()
    rows = Heartbeat.objects.filter(
        ended_at__isnull=True, reaped_at__isnull=True, beat_at__gt=fresh_after(now)
    ).order_by("started_at", "id")
    return [
        {
            "subject": row.subject,
            "kind": row.kind,
            "attempt": row.attempt,
            "task": row.task,
            "worker": row.worker or f"{row.host}:{row.pid}",
            "stage": row.stage,
            "started_at": row.started_at,
            "running_s": max(0.0, (now - row.started_at).total_seconds()),
            "beat_age_s": max(0.0, (now - row.beat_at).total_seconds()),
        }
        for row in rows
    ]


def recent_lost(limit: int = RECENT_LOST) -> list[Heartbeat]:
    """The last tasks whose worker died, with what the reaper did."""
    return list(
        Heartbeat.objects.filter(reaped_at__isnull=False).order_by("-reaped_at")[:limit]
    )


def job_counts() -> dict[tuple[str, str], int]:
    """{(kind, status): jobs}: background jobs (recordings, exports, imports...)
    and training runs (kind "training_run")."""
    counts = {
        (row["kind"], row["status"]): row["n"]
        for row in Job.objects.values("kind", "status").annotate(n=Count("id"))
    }
    for row in TrainingRun.objects.values("status").annotate(n=Count("id")):
        counts[("training_run", row["status"])] = row["n"]
    return counts


def lost_total() -> int:
    return Heartbeat.objects.filter(reaped_at__isnull=False).count()


RUN_DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)


def run_durations() -> list[float]:
    """Seconds from start to end of every training run that ended done."""
    rows = TrainingRun.objects.filter(
        status=RunStatus.DONE, started_at__isnull=False, finished_at__isnull=False
    ).values_list("started_at", "finished_at")
    return [max(0.0, (end - start).total_seconds()) for start, end in rows]
