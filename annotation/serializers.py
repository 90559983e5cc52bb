"""Input and output serializers of the REST API (one pair per operation).

Kept in one module so drf-spectacular names every schema component uniquely.
Output serializers for experts carry no votes of others, no distribution and no
model output (blind grading).
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation import errors, services
from annotation.handles import presentation_handle
from video.clips import marker_positions

_HANDLE_HELP = (
    "The clip's handle for this presentation (opaque; a hidden repeat gets its "
    "own): the clip in a vote, the vote's id, the end of its change URL."
)


def clip_video_url(clip_id: int) -> str:
    try:
        return reverse("clip_video", args=[clip_id])
    except NoReverseMatch:
        return f"/media/clips/{clip_id}/video.mp4"


def presentation_video_url(handle: str) -> str:
    return reverse("presentation_video", args=[handle])


def vote_change_url(handle: str) -> str:
    return reverse("api-vote-detail", args=[handle])


class ProgressSerializer(serializers.Serializer):
    graded = serializers.IntegerField()
    total = serializers.IntegerField()


class DistributionSerializer(serializers.Serializer):
    counts = serializers.ListField(child=serializers.IntegerField())
    probs = serializers.ListField(child=serializers.FloatField())
    n_votes = serializers.IntegerField()
    mode = serializers.CharField(allow_null=True)
    mean_score = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)
    entropy = serializers.FloatField(allow_null=True, help_text="bits")


class DistributionRowSerializer(DistributionSerializer):
    clip = serializers.IntegerField()


# --- next clip ---------------------------------------------------------------------


class ClipNextInputSerializer(serializers.Serializer):
    tab = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=64,
        help_text="An id the page picks per browser tab, so two tabs never share "
        "a clip and a tab gets back the clip it preloaded.",
    )
    count = serializers.IntegerField(
        required=False, default=2, min_value=1, max_value=5
    )


class QueuedClipSerializer(serializers.Serializer):
    """A clip handed to the expert, named by its presentation handle; the
    context carries ``expert_id``."""

    id = serializers.SerializerMethodField(help_text=_HANDLE_HELP)
    video_url = serializers.SerializerMethodField()
    n_frames = serializers.IntegerField(source="clip.n_frames")
    fps = serializers.FloatField(source="clip.fps")
    size_px = serializers.IntegerField(source="clip.size_px")
    synthetic = serializers.BooleanField(source="clip.is_synthetic")
    marker = serializers.SerializerMethodField(
        help_text="Per frame, where the graded sperm's head is, as [x, y] in clip "
        "pixels (from the stored track; the player draws its ring there). Null "
        "when the clip has no usable track."
    )
    lease_expires_at = serializers.DateTimeField()

    @extend_schema_field(
        {
            "type": "array",
            "nullable": True,
            "items": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 2,
                "maxItems": 2,
            },
        }
    )
    def get_marker(self, assignment):
        clip = assignment.clip
        marker = marker_positions(clip.track, clip.size_px)
        if marker is None or len(marker) != clip.n_frames:
            return None
        return marker

    def _handle(self, assignment) -> str:
        return presentation_handle(
            expert_id=self.context["expert_id"],
            clip_id=assignment.clip.pk,
            repeat=assignment.is_repeat,
        )

    def get_id(self, assignment) -> str:
        return self._handle(assignment)

    def get_video_url(self, assignment) -> str:
        return presentation_video_url(self._handle(assignment))

    def to_representation(self, assignment) -> dict:
        """The fields above, built directly: this runs for every clip of every
        next-clip request, and DRF's generic path (a deep copy of the fields
        per serializer, one lookup per field, the handle signed twice) cost
        about as much as the queue's queries. The same output as the generic
        path (``tests/annotation/test_serializers_fast.py``)."""
        clip = assignment.clip
        handle = self._handle(assignment)
        return {
            "id": handle,
            "video_url": presentation_video_url(handle),
            "n_frames": _maybe(int, clip.n_frames),
            "fps": _maybe(float, clip.fps),
            "size_px": _maybe(int, clip.size_px),
            "synthetic": _maybe(bool, clip.is_synthetic),
            "marker": self.get_marker(assignment),
            "lease_expires_at": _maybe(
                _DATETIME.to_representation, assignment.lease_expires_at
            ),
        }


_DATETIME = serializers.DateTimeField()


def _maybe(convert, value):
    """As a DRF field: None stays None (null in JSON), anything else converted."""
    return None if value is None else convert(value)


class ClipNextOutputSerializer(serializers.Serializer):
    clips = QueuedClipSerializer(many=True)
    progress = ProgressSerializer()
    held_elsewhere = serializers.IntegerField(
        help_text="Clips this expert holds in other tabs or windows (they come "
        "back to the pool when those tabs close or their leases lapse)."
    )


class ClipReleaseInputSerializer(serializers.Serializer):
    tab = serializers.CharField(max_length=64, help_text="The closing tab's id.")
    before = serializers.DateTimeField(
        required=False,
        help_text="Release only leases granted up to this time (the page's "
        "pagehide, in server time): a reload's new grant is kept.",
    )


class ClipReleaseOutputSerializer(serializers.Serializer):
    released = serializers.IntegerField()


# --- votes -------------------------------------------------------------------------


class GradeField(serializers.CharField):
    """'A'..'E' or 1..5 (number or string); the message names what is allowed."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        value = super().to_internal_value(data)
        try:
            return services.grade_parse(value)
        except errors.InvalidGrade as exc:
            raise serializers.ValidationError(exc.message) from None


def database_id(text: str) -> int | None:
    """``text`` as a database id (ASCII digits, 1 .. 2**63 - 1: the bigint
    column), else None. Not ``str.isdigit`` alone: it takes "²", which int()
    refuses."""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number < 2**63 else None


class ClipRefField(serializers.CharField):
    """A presentation handle (what experts are given) or a numeric clip id."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)  # a string, its length checked
        if value.isascii() and value.isdigit():
            number = database_id(value)
            if number is None:
                raise serializers.ValidationError("No clip has this id.")
            return number
        return value


class VoteCreateInputSerializer(serializers.Serializer):
    clip = ClipRefField(
        max_length=40,
        help_text="The clip's handle, as POST /api/clips/next/ gave it. A numeric "
        "clip id gets the answer an unknown handle gets (404): experts name only "
        "the clips handed to them.",
    )
    grade = GradeField(help_text="A (good) .. E (bad); 1..5 also accepted.")
    seconds_spent = serializers.FloatField(required=False, default=0.0, min_value=0.0)

    def validate(self, attrs):
        if "expert" in self.initial_data:
            raise serializers.ValidationError(
                {
                    "expert": "Votes are always recorded for the signed-in expert; "
                    "remove the 'expert' field."
                }
            )
        return attrs


class VoteChangeInputSerializer(serializers.Serializer):
    grade = GradeField()


class VoteResultSerializer(serializers.Serializer):
    """The answer to a vote or a change; same shape for ordinary and repeat votes."""

    id = serializers.CharField(help_text=_HANDLE_HELP)
    clip = serializers.CharField(help_text=_HANDLE_HELP)
    grade = serializers.CharField()
    created_at = serializers.DateTimeField()
    undo_until = serializers.DateTimeField(
        allow_null=True,
        help_text="Until when the grade can be changed; null when the vote is "
        "final (the site reveals the panel after each vote, which forfeits undo).",
    )
    change_url = serializers.CharField()
    progress = ProgressSerializer()
    panel = DistributionSerializer(
        required=False,
        help_text="Only when the admin setting reveals the panel, and then the "
        "vote is final.",
    )


class ExpertVoteOutputSerializer(serializers.Serializer):
    """One of the expert's own votes, first showing or hidden repeat alike,
    named by its presentation handle (rows of selectors.votes_of_expert)."""

    id = serializers.SerializerMethodField(help_text=_HANDLE_HELP)
    clip = serializers.SerializerMethodField(help_text=_HANDLE_HELP)
    grade = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    seconds_spent = serializers.FloatField()
    change_url = serializers.SerializerMethodField()

    def _handle(self, row) -> str:
        return presentation_handle(
            expert_id=self.context["expert_id"],
            clip_id=row["clip_id"],
            repeat=row["repeat"],
        )

    def get_id(self, row) -> str:
        return self._handle(row)

    def get_clip(self, row) -> str:
        return self._handle(row)

    def get_change_url(self, row) -> str:
        return vote_change_url(self._handle(row))


class VoteOutputSerializer(serializers.Serializer):
    """A vote as an admin sees it (database ids; first showings only)."""

    id = serializers.IntegerField()
    clip = serializers.IntegerField(source="clip_id")
    grade = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    seconds_spent = serializers.FloatField()
    expert = serializers.IntegerField(source="expert_id")


# --- clips -------------------------------------------------------------------------


class ClipOutputSerializer(serializers.Serializer):
    """What an expert sees of a clip: only what grading needs (no patient, no
    recording, no measured speed: it predicts the grade)."""

    id = serializers.IntegerField()
    video_url = serializers.SerializerMethodField()
    n_frames = serializers.IntegerField()
    fps = serializers.FloatField()
    size_px = serializers.IntegerField()
    synthetic = serializers.BooleanField(source="is_synthetic")

    def get_video_url(self, clip) -> str:
        return clip_video_url(clip.pk)


class ClipAdminOutputSerializer(ClipOutputSerializer):
    """What an admin sees: the expert view plus provenance, the measurements,
    the panel and synthetic truth."""

    patient = serializers.CharField(source="patient.code")
    recording = serializers.IntegerField(source="recording_id", allow_null=True)
    frame_start = serializers.IntegerField()
    frame_end = serializers.IntegerField()
    speed = serializers.FloatField()
    speed_unit = serializers.CharField()
    is_active = serializers.BooleanField()
    review = serializers.CharField()
    review_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    kinematics = serializers.JSONField()
    latent_quality = serializers.FloatField(allow_null=True)
    distribution = serializers.SerializerMethodField()

    @extend_schema_field(DistributionSerializer)
    def get_distribution(self, clip) -> dict:
        from annotation.selectors import distribution_from_counts

        row = getattr(clip, "distribution", None)
        return distribution_from_counts(row.counts if row else [0, 0, 0, 0, 0])


class DistributionListInputSerializer(serializers.Serializer):
    clip = serializers.ListField(
        # a clip id fits the database's bigint column
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        help_text="Repeat to restrict to some clips: ?clip=1&clip=2",
    )


# --- clip review -------------------------------------------------------------------


class ClipReviewInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    reason = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=200,
        help_text="Why (required to reject): e.g. not a sperm, two cells overlap.",
    )


class ClipReviewOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    review = serializers.CharField()
    review_reason = serializers.CharField()
    reviewed_at = serializers.DateTimeField()
    reviewed_by = serializers.CharField(source="reviewed_by.get_username")


# --- recording motility ------------------------------------------------------------


class RecordingMotilitySerializer(serializers.Serializer):
    """Recording-level motility (CASA): every track of the recording, WHO classes."""

    recording = serializers.IntegerField()
    status = serializers.CharField()
    source = serializers.CharField(help_text="Which tracks were counted.")
    n_tracks = serializers.IntegerField(help_text="Tracks classified.")
    n_short = serializers.IntegerField(help_text="Tracks shorter than one clip span.")
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Tracks per class: progressive, non-progressive, immotile.",
    )
    percent = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="Per class, % of the classified tracks (null with none).",
    )
    mean = serializers.DictField(child=serializers.FloatField(allow_null=True))
    unit = serializers.CharField()
    scale_assumed = serializers.BooleanField()
    vap = serializers.ListField(child=serializers.FloatField())
    thresholds = serializers.DictField(child=serializers.FloatField())
