"""factory_boy factories for the annotation app.

Users go through the services (so groups and profiles are right); clips are plain
rows without media files unless a test needs them (``clip_with_files``).
"""

from __future__ import annotations

import factory
import numpy as np
from django.utils import timezone

from annotation import services
from annotation.models import Clip, Patient, Vote

PASSWORD = "grading-pass-123"


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"PT-{n:05d}")
    is_synthetic = True


class ClipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clip

    patient = factory.SubFactory(PatientFactory)
    frame_start = 0
    frame_end = 16
    n_frames = 16
    fps = 15.0
    size_px = 150
    track = factory.LazyFunction(lambda: [[10.0, 10.0]] * 16)
    speed = 25.0
    speed_unit = Clip.SpeedUnit.PX_PER_S
    kinematics = factory.LazyFunction(lambda: {"vcl": 30.0})
    is_synthetic = True
    latent_quality = 0.5


class ExpertFactory(factory.Factory):
    class Meta:
        model = dict  # built through services.expert_create below

    username = factory.Sequence(lambda n: f"expert{n}")

    @classmethod
    def _create(cls, model_class, username, **kwargs):
        return services.expert_create(username=username, password=PASSWORD, **kwargs)

    _build = _create


class AdminFactory(factory.Factory):
    class Meta:
        model = dict

    username = factory.Sequence(lambda n: f"admin{n}")

    @classmethod
    def _create(cls, model_class, username, **kwargs):
        return services.admin_create(username=username, password=PASSWORD, **kwargs)

    _build = _create


class VoteFactory(factory.django.DjangoModelFactory):
    """A vote row written directly (the counting triggers still fire)."""

    class Meta:
        model = Vote

    expert = factory.SubFactory(ExpertFactory)
    clip = factory.SubFactory(ClipFactory)
    grade = "C"
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda o: o.created_at)


def tiny_frames(t: int = 4, size: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(t, size, size, 3), dtype=np.uint8)


def clip_spec(seed: int) -> dict:
    """One clip as ``services.clips_replace_for_recording`` takes it: 4 frames
    of 8 px filled with ``seed``, a fixed track and speed, a stand-in MP4 header."""
    return {
        "frames": np.full((4, 8, 8, 3), seed, dtype=np.uint8),
        "fps": 15.0,
        "track": [[1.0, 2.0]] * 4,
        "speed": 1.0,
        "speed_unit": "px/s",
        "kinematics": {"vcl": 1.0},
        "video_bytes": b"\x00\x00\x00\x18ftypmp42",
    }


def offer(expert, clips, *, holder: str = "") -> None:
    """Hand clips to an expert as the next-clip call does (a vote needs an offer)."""
    from django.utils import timezone

    from annotation import services

    services.clip_leases_grant(
        expert=expert,
        holder=holder,
        clips=[(clip.pk, False) for clip in clips],
        now=timezone.now(),
        release_expired=False,
    )


def handle(expert, clip, *, repeat: bool = False) -> str:
    """The presentation handle an expert knows a clip by (annotation.handles)."""
    from annotation.handles import presentation_handle

    return presentation_handle(expert_id=expert.pk, clip_id=clip.pk, repeat=repeat)


def clip_id_of(handle_text: str) -> int:
    """The clip behind a handle the API gave (tests read it; experts cannot)."""
    from annotation.handles import presentation_parse

    found = presentation_parse(handle_text)
    assert found is not None, handle_text
    return found.clip_id
