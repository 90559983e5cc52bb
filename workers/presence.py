"""Workers' own heartbeats: the main process of every worker writes its queues and
the time every few seconds, so the web side can say when no worker serves a queue
(without a task, which would need a worker to run)."""

from __future__ import annotations

import logging
import os
import threading

from celery.signals import worker_ready, worker_shutdown

logger = logging.getLogger(__name__)
_stop = threading.Event()
_presence: dict = {}


def _write(name: str, queues: list[str], *, stopped: bool = False) -> None:
    """Upsert this worker's row; a failure is logged and the next beat retries."""
    from django import db
    from django.utils import timezone

    from jobs.liveness import host_name
    from jobs.models import WorkerPresence

    now = timezone.now()
    seen = {"queues": queues, "host": host_name(), "pid": os.getpid(), "seen_at": now}
    try:
        WorkerPresence.objects.update_or_create(
            name=name[:255],
            defaults={**seen, "stopped_at": now if stopped else None},
            create_defaults={**seen, "started_at": now},
        )
    except Exception:  # noqa: BLE001 - try again at the next beat
        logger.warning("worker presence not written", exc_info=True)
    finally:
        db.connection.close()  # no idle session held between beats


def _loop(name: str, queues: list[str]) -> None:
    from django.conf import settings

    while not _stop.wait(settings.WORKER_PRESENCE_SECONDS):
        _write(name, queues)


@worker_ready.connect
def presence_start(sender=None, **_: object) -> None:
    name = getattr(sender, "hostname", "") or "worker"
    queues = sorted(q.name for q in sender.task_consumer.queues)
    _write(name, queues)
    threading.Thread(
        target=_loop, args=(name, queues), name="worker-presence", daemon=True
    ).start()
    _presence.update(name=name, queues=queues)


@worker_shutdown.connect
def presence_stop(**_: object) -> None:
    _stop.set()
    if _presence:
        _write(_presence["name"], _presence["queues"], stopped=True)
