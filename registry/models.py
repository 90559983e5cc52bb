"""The model loop's records: snapshots, training runs (and their folds), model
versions with their promotion history, and predictions.

Everything a run does is a row here, so a web or worker restart loses nothing.
Snapshots and predictions are written once and never change (predictions are
guarded by a database trigger, ``registry.sql``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Clip


class Snapshot(models.Model):
    """The active clips with enough votes and their counts as they stood at
    ``cutoff``, frozen into a manifest under media storage (``path``)."""

    sha256 = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of manifest.jsonl"
    )
    cutoff = models.DateTimeField()
    min_votes = models.PositiveIntegerField()
    n_clips = models.PositiveIntegerField()
    n_votes = models.PositiveIntegerField()
    clip_ids = models.JSONField(default=list, help_text="annotation clip ids")
    fully_voted_ids = models.JSONField(
        default=list, help_text="clips that had every vote (VOTES_PER_CLIP) then"
    )
    path = models.CharField(max_length=255, help_text="folder under MEDIA_ROOT")
    is_synthetic = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"snapshot {self.sha256[:12]} ({self.n_clips} clips)"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED)


class TrainingRun(models.Model):
    class Trigger(models.TextChoices):
        MANUAL = "manual", "Started by an admin"
        NIGHTLY = "nightly", "Nightly schedule"
        VOTES = "votes", "New fully voted clips"
        DEMO = "demo", "Demo launch"

    profile = models.CharField(max_length=32)
    overrides = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, help_text="the resolved modeling config")
    queue = models.CharField(max_length=16)
    trigger = models.CharField(
        max_length=16, choices=Trigger.choices, default=Trigger.MANUAL
    )
    snapshot = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    cancel_requested = models.BooleanField(default=False)
    progress = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    error_message = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    registering_at = models.DateTimeField(
        null=True, blank=True, help_text="set once by the task that registers"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="run_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.profile}, {self.status})"


class TrainingFold(models.Model):
    """One cross-validation fold of a run (index -1: the final model), a task of
    its own that any worker on the run's queue may pick up."""

    FINAL = -1

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="folds")
    index = models.IntegerField()
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    attempt = models.PositiveIntegerField(default=1)
    progress = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    device_name = models.CharField(max_length=255, blank=True)
    peak_memory_mb = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="fold_once_per_run")
        ]

    def __str__(self) -> str:
        name = "final" if self.index == self.FINAL else f"fold {self.index}"
        return f"run {self.run_id} {name} ({self.status})"


class ModelVersion(models.Model):
    """A registered model: complete artifacts under ``artifact_path`` or no row."""

    number = models.PositiveIntegerField(unique=True)
    run = models.OneToOneField(
        TrainingRun, on_delete=models.PROTECT, related_name="version"
    )
    snapshot = models.ForeignKey(
        Snapshot, on_delete=models.PROTECT, related_name="versions"
    )
    profile = models.CharField(max_length=32)
    model_name = models.CharField(max_length=64)
    metrics = models.JSONField(default=dict)
    emd_mean = models.FloatField()
    emd_std = models.FloatField()
    baseline_emd = models.FloatField(
        null=True, help_text="EMD of the training-set mean distribution"
    )
    final_model = models.CharField(
        max_length=128,
        default="one model fitted on the whole snapshot",
        help_text="what predicts clips outside the snapshot",
    )
    artifact_path = models.CharField(max_length=255)
    code_version = models.CharField(max_length=64)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="one_active_version",
            )
        ]

    def __str__(self) -> str:
        return f"v{self.number} ({self.model_name})"


class VersionEvent(models.Model):
    """Promotions and rollbacks, with who (empty: automatic) and when."""

    class Action(models.TextChoices):
        PROMOTED = "promoted", "Promoted"
        AUTO_PROMOTED = "auto_promoted", "Promoted automatically"
        HELD = "held", "Registered, awaiting an admin"
        ROLLED_BACK = "rolled_back", "Rolled back to"

    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="events"
    )
    previous = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the version active before",
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField(blank=True)
    evidence = models.JSONField(
        default=dict,
        blank=True,
        help_text="an automatic decision's paired comparison with the version "
        "active then (registry.comparison)",
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} v{self.version.number}"


class Prediction(models.Model):
    class Source(models.TextChoices):
        OUT_OF_FOLD = "oof", "Out-of-fold (the model never trained on the clip)"
        FINAL = "final", "Final model (clip outside the snapshot)"

    clip = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="predictions"
    )
    p_a = models.FloatField()
    p_b = models.FloatField()
    p_c = models.FloatField()
    p_d = models.FloatField()
    p_e = models.FloatField()
    source = models.CharField(max_length=8, choices=Source.choices)
    fold = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "clip"]
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "version"], name="one_prediction_per_clip_version"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version_id} clip {self.clip_id}"

    @property
    def probs(self) -> list[float]:
        return [self.p_a, self.p_b, self.p_c, self.p_d, self.p_e]
