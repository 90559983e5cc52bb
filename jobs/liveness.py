"""The worker side of liveness: a heartbeat row per running task, refreshed by one
small thread per process for as long as the task runs, whatever it is doing
(loading a snapshot, evaluating, saving a checkpoint, writing a zip).

    with alive("export:12", task="workers.tasks.dataset_export") as pulse:
        ...                      # pulse.stage("writing clips") says where it is
        if pulse.stop_requested.is_set(): ...   # set by the pulse's stop_check

The thread also runs each pulse's ``stop_check`` (e.g. "was the run cancelled or
failed?") once per beat, so a long task learns it should stop without asking the
database itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django import db
from django.conf import settings
from django.utils import timezone

from jobs.models import Heartbeat

logger = logging.getLogger(__name__)


@dataclass
class Pulse:
    row_id: int
    subject: str
    attempt: int
    stop_check: Callable[[], bool] | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def stage(self, text: str) -> None:
        """Say what the task is doing now (shown beside the job)."""
        Heartbeat.objects.filter(pk=self.row_id).update(
            stage=text[:200], beat_at=timezone.now()
        )

    def attempt_set(self, attempt: int) -> None:
        """The task took over as a newer attempt (a restarted fold)."""
        self.attempt = attempt
        Heartbeat.objects.filter(pk=self.row_id).update(attempt=attempt)


class _Beater(threading.Thread):
    """One per process: refreshes every live pulse's row every few seconds."""

    def __init__(self) -> None:
        super().__init__(name="spermgrade-heartbeat", daemon=True)
        self.pid = os.getpid()
        self.pulses: dict[int, Pulse] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()

    def add(self, pulse: Pulse) -> None:
        with self.lock:
            self.pulses[pulse.row_id] = pulse
        self.wake.set()  # beat soon, at the interval in force now

    def remove(self, pulse: Pulse) -> None:
        with self.lock:
            self.pulses.pop(pulse.row_id, None)

    def run(self) -> None:
        while True:
            self.wake.wait(settings.JOB_HEARTBEAT_SECONDS)
            self.wake.clear()
            with self.lock:
                pulses = list(self.pulses.values())
            if pulses:
                self.beat(pulses)

    def beat(self, pulses: list[Pulse]) -> None:
        # A connection of its own, opened and closed each beat: a database restart
        # cannot stop the beats, and no idle session is held between them.
        try:
            Heartbeat.objects.filter(pk__in=[p.row_id for p in pulses]).update(
                beat_at=timezone.now()
            )
            for pulse in pulses:
                if pulse.stop_check is not None and pulse.stop_check():
                    pulse.stop_requested.set()
        except Exception:  # noqa: BLE001 - the next beat tries again
            logger.warning("heartbeat not written", exc_info=True)
        finally:
            db.connection.close()


_local = threading.local()


def current() -> Pulse | None:
    """The innermost pulse of the task running in this thread, if any."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


_beater: _Beater | None = None
_beater_lock = threading.Lock()


def _the_beater() -> _Beater:
    global _beater
    with _beater_lock:
        # A forked child inherits the object but not the thread: start its own.
        if _beater is None or _beater.pid != os.getpid() or not _beater.is_alive():
            _beater = _Beater()
            _beater.start()
        return _beater


def stage(key: str, detail: str = "") -> None:
    """Say which step the current task is at (shown with its heartbeat).

    ``JOB_STAGE_PAUSE`` ("key=seconds,...", empty in production) holds a task at
    a step for that long: the fault-injection benchmark (benchmarks/loop_faults.py)
    uses it to kill a worker *at* a step that is otherwise over in milliseconds.
    """
    pulse = current()
    if pulse is None:
        return
    pulse.stage(f"{key}: {detail}" if detail else key)
    pause = _pauses().get(key)
    if pause:
        time.sleep(pause)


def _pauses() -> dict[str, float]:
    pauses = {}
    for item in settings.JOB_STAGE_PAUSE.split(","):
        key, _, seconds = item.partition("=")
        if key.strip() and seconds.strip():
            pauses[key.strip()] = float(seconds)
    return pauses


def host_name() -> str:
    return socket.gethostname()[:255]


@contextlib.contextmanager
def alive(
    subject: str,
    *,
    attempt: int = 1,
    task: str = "",
    worker: str = "",
    stop_check: Callable[[], bool] | None = None,
) -> Iterator[Pulse]:
    """A heartbeat for ``subject`` while the block runs; closed however it ends."""
    now = timezone.now()
    row = Heartbeat.objects.create(
        subject=subject[:64],
        attempt=attempt,
        task=task[:128],
        host=host_name(),
        worker=worker[:255],
        pid=os.getpid(),
        started_at=now,
        beat_at=now,
    )
    pulse = Pulse(
        row_id=row.pk, subject=subject, attempt=attempt, stop_check=stop_check
    )
    beater = _the_beater()
    beater.add(pulse)
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(pulse)
    try:
        yield pulse
    finally:
        stack.remove(pulse)
        beater.remove(pulse)
        try:
            Heartbeat.objects.filter(pk=row.pk).update(ended_at=timezone.now())
        except Exception:  # noqa: BLE001 - the task's own error matters more
            logger.warning("heartbeat %s not closed", row.pk, exc_info=True)
