"""SpermGrade data model: patients, recordings, tracked clips, experts and their votes.

Invariants live in the database: one vote per expert and clip (unique constraint),
grades limited to A..E (check constraint), and per-clip grade counts kept by database
triggers (``annotation/sql.py``) so the distribution can never drift from the
votes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from modeling.grades import GRADE_LABELS, GRADE_SCORE, GRADES  # noqa: F401

# Bounds the database holds every stored number to (finite, and plausible).
FPS_MAX = 10_000.0  # frames per second (and source frames per clip frame)
SPEED_MAX = 1e6  # px/s or um/s
SECONDS_SPENT_MAX = 86_400  # a day on one clip is already not grading

# The grades are defined once, in modeling.grades (pure: the models and the dataset
# manifest share them).
Grade = models.TextChoices(
    "Grade", [(grade, (grade, GRADE_LABELS.get(grade, grade))) for grade in GRADES]
)


class Patient(models.Model):
    code = models.CharField(
        max_length=64, unique=True, help_text="Pseudonymous code; never a name."
    )
    is_synthetic = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Recording(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Mode(models.TextChoices):
        AUTO = "auto", "Automatic detection"
        MANUAL = "manual", "Manual targets"

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="recordings"
    )
    source = models.FileField(upload_to="recordings/", blank=True)
    sha256 = models.CharField(max_length=64, unique=True, null=True, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    fps = models.FloatField(default=0.0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    n_frames = models.PositiveIntegerField(null=True, blank=True)
    um_per_px = models.FloatField(
        null=True, blank=True, help_text="Micrometres per pixel, if calibrated."
    )
    microscope_notes = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.UPLOADED
    )
    progress_percent = models.FloatField(default=0.0)
    frames_per_s = models.FloatField(
        null=True, blank=True, help_text="Processing speed."
    )
    error_message = models.TextField(blank=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.AUTO)
    max_clips = models.PositiveIntegerField(default=10)
    targets = models.JSONField(
        default=list, blank=True, help_text="[[x, y], ...] clicked on the first frame."
    )
    is_synthetic = models.BooleanField(default=False)
    motility = models.JSONField(
        default=dict,
        blank=True,
        help_text="Recording-level motility from every track (video.motility).",
    )
    preview_ready = models.BooleanField(
        default=False,
        help_text="The first frame and its detections are stored (set by the worker).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="recording_status_idx")]

    def __str__(self) -> str:
        return f"Recording {self.pk} ({self.original_name or 'unnamed'})"


class Clip(models.Model):
    class SpeedUnit(models.TextChoices):
        UM_PER_S = "um/s", "µm/s"
        PX_PER_S = "px/s", "px/s"

    class Review(models.TextChoices):
        PENDING = "pending", "pending review"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"

    recording = models.ForeignKey(
        Recording,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="clips",
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="clips")
    frame_start = models.PositiveIntegerField(default=0)
    frame_end = models.PositiveIntegerField(default=0)
    n_frames = models.PositiveIntegerField(default=0)
    fps = models.FloatField(default=0.0)
    source_fps = models.FloatField(
        null=True,
        blank=True,
        help_text="The recording's frame rate (fps is the clip's).",
    )
    frame_stride = models.FloatField(
        default=1.0, help_text="Source frames per clip frame (source_fps / fps)."
    )
    size_px = models.PositiveIntegerField(default=150)
    array_file = models.FileField(
        upload_to="clips/", blank=True, help_text=".npy uint8 T×H×W×C"
    )
    video_file = models.FileField(upload_to="clips/", blank=True, help_text="H.264 mp4")
    track = models.JSONField(
        default=list, blank=True, help_text="[[x, y], ...] per frame, recording px."
    )
    speed = models.FloatField(default=0.0)
    speed_unit = models.CharField(
        max_length=8, choices=SpeedUnit.choices, default=SpeedUnit.PX_PER_S
    )
    kinematics = models.JSONField(default=dict, blank=True)
    is_synthetic = models.BooleanField(default=False)
    latent_quality = models.FloatField(
        null=True,
        blank=True,
        help_text="Synthetic ground truth; never shown to experts.",
    )
    is_active = models.BooleanField(default=True)
    review = models.CharField(
        max_length=8,
        choices=Review.choices,
        default=Review.APPROVED,
        help_text="Only approved clips reach experts. Clips cut from uploaded "
        "recordings wait in pending review while the site setting asks for it; "
        "rejected clips are kept for the record.",
    )
    review_reason = models.CharField(max_length=200, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["is_active"], name="clip_active_idx"),
            models.Index(fields=["review"], name="clip_review_idx"),
        ]
        # Finite numbers only: PostgreSQL stores NaN and orders it above every
        # number (so "x >= 0" lets it through, "x < bound" does not); SQLite
        # stores NaN as NULL, which NOT NULL refuses.
        constraints = [
            models.CheckConstraint(
                condition=Q(fps__gte=0) & Q(fps__lte=FPS_MAX), name="clip_fps_finite"
            ),
            models.CheckConstraint(
                condition=Q(source_fps__isnull=True)
                | (Q(source_fps__gte=0) & Q(source_fps__lte=FPS_MAX)),
                name="clip_source_fps_finite",
            ),
            models.CheckConstraint(
                condition=Q(frame_stride__gt=0) & Q(frame_stride__lte=FPS_MAX),
                name="clip_frame_stride_finite",
            ),
            models.CheckConstraint(
                condition=Q(speed__gte=0) & Q(speed__lte=SPEED_MAX),
                name="clip_speed_finite",
            ),
            models.CheckConstraint(
                condition=Q(latent_quality__isnull=True)
                | (Q(latent_quality__gte=0) & Q(latent_quality__lte=1)),
                name="clip_latent_quality_0_to_1",
            ),
        ]

    def __str__(self) -> str:
        return f"Clip {self.pk}"


class ClipDistribution(models.Model):
    """Per-clip grade counts, maintained by database triggers on ``annotation_vote``.

    Never written by application code: rows are created by a trigger on clip insert
    and updated by triggers on vote insert/update/delete (see ``sql.py``).
    Hidden repeat votes live in another table and are never counted here.
    """

    clip = models.OneToOneField(
        Clip,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="distribution",
        db_column="clip_id",
    )
    n_a = models.IntegerField(default=0)
    n_b = models.IntegerField(default=0)
    n_c = models.IntegerField(default=0)
    n_d = models.IntegerField(default=0)
    n_e = models.IntegerField(default=0)
    n_votes = models.IntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["n_votes"], name="distribution_n_votes_idx"),
            # The clip explorer finds a page's clips by their counts.
            models.Index(
                fields=["n_a", "n_b", "n_c", "n_d", "n_e", "clip"],
                name="distribution_counts_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Distribution of clip {self.clip_id}"

    @property
    def counts(self) -> list[int]:
        return [self.n_a, self.n_b, self.n_c, self.n_d, self.n_e]


class ExpertProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="expert_profile",
    )
    code = models.CharField(max_length=32, unique=True, help_text="e.g. EXP-0007")
    years_experience = models.PositiveIntegerField(default=0)
    is_simulated = models.BooleanField(default=False)
    is_imported = models.BooleanField(
        default=False,
        help_text="Created by a bundle import, named by its pseudonym; imports "
        "add votes only to such accounts, never to a local one.",
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Vote(models.Model):
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes"
    )
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="votes")
    grade = models.CharField(max_length=1, choices=Grade.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    seconds_spent = models.FloatField(default=0.0)
    is_final = models.BooleanField(
        default=False,
        db_default=False,  # bulk and COPY inserts that leave it out
        help_text="Cast while the panel was revealed after each vote: it can never "
        "change, even if the reveal is turned off later.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["expert", "clip"], name="vote_one_per_expert_and_clip"
            ),
            models.CheckConstraint(
                condition=Q(grade__in=GRADES), name="vote_grade_a_to_e"
            ),
            models.CheckConstraint(
                condition=Q(seconds_spent__gte=0),
                name="vote_seconds_spent_not_negative",
            ),
            models.CheckConstraint(  # refuses NaN too (see Clip's constraints)
                condition=Q(seconds_spent__lte=SECONDS_SPENT_MAX),
                name="vote_seconds_spent_at_most_a_day",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expert", "created_at"], name="vote_expert_created_idx"
            ),
            models.Index(fields=["clip", "grade"], name="vote_clip_grade_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.expert_id} → clip {self.clip_id}: {self.grade}"


class RepeatVote(models.Model):
    """A hidden test–retest vote: the expert saw a clip again without being told.

    Used for the expert's self-consistency only, never in distributions.
    """

    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="repeat_votes"
    )
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, related_name="repeat_votes"
    )
    grade = models.CharField(max_length=1, choices=Grade.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    seconds_spent = models.FloatField(default=0.0)
    is_final = models.BooleanField(
        default=False,
        db_default=False,  # bulk and COPY inserts that leave it out
        help_text="Cast while the panel was revealed after each vote: it can never "
        "change, even if the reveal is turned off later.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["expert", "clip"], name="repeatvote_one_per_expert_and_clip"
            ),
            models.CheckConstraint(
                condition=Q(grade__in=GRADES), name="repeatvote_grade_a_to_e"
            ),
            models.CheckConstraint(
                condition=Q(seconds_spent__gte=0),
                name="repeatvote_seconds_spent_not_negative",
            ),
            models.CheckConstraint(  # refuses NaN too (see Clip's constraints)
                condition=Q(seconds_spent__lte=SECONDS_SPENT_MAX),
                name="repeatvote_seconds_spent_at_most_a_day",
            ),
        ]

    def __str__(self) -> str:
        return f"repeat {self.expert_id} → clip {self.clip_id}: {self.grade}"


class VoteHistory(models.Model):
    """Every creation and change of a vote or repeat vote, append-only."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"

    vote = models.ForeignKey(
        Vote, null=True, blank=True, on_delete=models.SET_NULL, related_name="history"
    )
    repeat_vote = models.ForeignKey(
        RepeatVote,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="history",
    )
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    grade = models.CharField(max_length=1, choices=Grade.choices)
    previous_grade = models.CharField(max_length=1, choices=Grade.choices, blank=True)
    is_repeat = models.BooleanField(default=False)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "vote history"
        indexes = [
            models.Index(fields=["clip", "expert"], name="history_clip_expert_idx")
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.previous_grade or '-'}→{self.grade}"


class ClipLease(models.Model):
    """A clip handed to an expert; while it lasts no other tab of theirs gets it and
    it counts as a vote in flight, so the panel does not overshoot VOTES_PER_CLIP."""

    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clip_leases"
    )
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="leases")
    expires_at = models.DateTimeField()
    is_repeat = models.BooleanField(default=False)
    holder = models.CharField(
        max_length=64,
        blank=True,
        help_text="The browser tab holding the lease ('tab' parameter).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["expert", "clip"], name="lease_one_per_expert_and_clip"
            )
        ]
        indexes = [
            models.Index(fields=["clip", "expires_at"], name="lease_clip_expires_idx"),
            models.Index(
                fields=["expert", "expires_at"], name="lease_expert_expires_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"lease clip {self.clip_id} → {self.expert_id} until {self.expires_at}"


class ClipModelPriority(models.Model):
    """How much the active model says a clip needs more votes, for the queue's
    active allocation (VOTE_BUDGET_MODEL_PRIORITY). Written by the registry when a
    version predicts or is promoted; never shown to experts."""

    clip = models.OneToOneField(
        Clip, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    disagreement = models.FloatField(
        default=0.0, help_text="EMD between the prediction and the panel so far"
    )
    entropy = models.FloatField(
        default=0.0, help_text="normalised entropy of the prediction (0..1)"
    )
    version_number = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"priority of clip {self.clip_id}"


class SiteSetting(models.Model):
    """Singleton (pk=1) of settings an admin changes at run time."""

    reveal_panel_after_vote = models.BooleanField(
        default=False,
        help_text="After a vote, show the expert the panel distribution. The "
        "reveal forfeits the undo: with this on, votes are final when cast.",
    )
    review_new_clips = models.BooleanField(
        default=True,
        help_text="Clips cut from uploaded recordings wait for an administrator's "
        "or operator's approval before experts see them (synthetic recordings "
        "are approved at once).",
    )
    expert_feedback = models.BooleanField(
        default=False,
        help_text="Experts may open a page of where they stood against the rest "
        "of the panel on their recent final votes (never a model output).",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="sitesetting_singleton")
        ]

    def __str__(self) -> str:
        return "Site settings"

    @classmethod
    def load(cls) -> SiteSetting:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class Job(models.Model):
    """A background task's record: the Celery base task marks it failed on error;
    whether a worker is still on it is its heartbeat (``jobs``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    celery_task_id = models.CharField(max_length=64, blank=True)
    cancel_requested = models.BooleanField(default=False)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"


class PanelStatistics(models.Model):
    """The panel's agreement figures, computed from all votes and cached here.

    A periodic task recomputes them when the votes changed (``votes_marker`` is the
    newest vote-history id they saw), so the dashboards read one row, however many
    votes there are.
    """

    key = models.CharField(max_length=32, unique=True, default="panel")
    computed_at = models.DateTimeField()
    votes_marker = models.BigIntegerField(default=0)
    n_votes = models.PositiveIntegerField(default=0)
    seconds_to_compute = models.FloatField(default=0.0)
    data = models.JSONField(default=dict)

    class Meta:
        verbose_name_plural = "panel statistics"

    def __str__(self) -> str:
        return f"{self.key} at {self.computed_at:%Y-%m-%d %H:%M}"


class PanelStatisticsClaim(models.Model):
    """Single flight for the panel statistics refresh: one row per ``key`` whose
    ``token`` names the one refresh queued or running (empty: none).

    Taken and given back by conditional updates (``panel_statistics_claim_take``),
    so however many page views find the statistics stale, one task is queued.
    """

    key = models.CharField(max_length=32, unique=True, default="panel")
    token = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key} claimed by {self.token or 'nobody'}"


class ExternalIdentity(models.Model):
    """An account's identity at an OpenID Connect provider: the issuer and the
    subject (``sub``), which never change, unlike an e-mail address. Sign-in
    through the provider finds the account by these two only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="identity_issuer_subject_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
