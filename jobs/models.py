"""Heartbeats of running tasks and of the workers themselves."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Heartbeat(models.Model):
    """One task working on one job, alive while ``beat_at`` is fresh.

    Written when the task starts, refreshed every few seconds by a thread in the
    worker process (``jobs.liveness``) whatever the task is doing, and closed
    (``ended_at``) when it returns or raises. A row that is neither closed nor
    fresh belongs to a process that died: the reaper hands it to the job's kind.
    """

    subject = models.CharField(
        max_length=64, help_text='"<kind>:<id>[:<part>]", e.g. "fold:12:0"'
    )
    attempt = models.PositiveIntegerField(default=1)
    task = models.CharField(max_length=128, blank=True)
    host = models.CharField(max_length=255, help_text="the machine (hostname)")
    worker = models.CharField(max_length=255, blank=True, help_text="Celery node")
    pid = models.IntegerField()
    stage = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reaped_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True, help_text="what the reaper did")

    class Meta:
        ordering = ["-beat_at", "-id"]
        indexes = [
            models.Index(
                fields=["beat_at"],
                condition=Q(ended_at__isnull=True, reaped_at__isnull=True),
                name="heartbeat_open_idx",
            ),
            models.Index(fields=["subject", "attempt"], name="heartbeat_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} attempt {self.attempt} on {self.host}:{self.pid}"

    @property
    def kind(self) -> str:
        return self.subject.split(":", 1)[0]

    @property
    def ids(self) -> list[int]:
        """The numbers after the kind: ``fold:12:-1`` -> [12, -1]."""
        return [int(part) for part in self.subject.split(":")[1:]]


class WorkerPresence(models.Model):
    """A Celery worker (its main process) and the queues it serves, refreshed every
    few seconds while it runs; read by the web side to say when no worker is up."""

    name = models.CharField(max_length=255, unique=True, help_text="Celery node")
    queues = models.JSONField(default=list)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({', '.join(self.queues)})"
