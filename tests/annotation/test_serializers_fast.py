"""The next-clip answer's clips are built directly (QueuedClipSerializer's
to_representation) for speed; they must equal DRF's generic path field by field,
for ordinary clips, repeats, clips without a usable track and missing values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework import serializers

from annotation.selectors.queue import Assignment
from annotation.serializers import QueuedClipSerializer
from tests.factories import ClipFactory

pytestmark = pytest.mark.django_db


def generic(assignment, expert_id):
    serializer = QueuedClipSerializer(assignment, context={"expert_id": expert_id})
    return serializers.Serializer.to_representation(serializer, assignment)


def fast(assignment, expert_id):
    return QueuedClipSerializer(assignment, context={"expert_id": expert_id}).data


def test_the_direct_representation_equals_drfs():
    when = datetime(2026, 12, 6, 22, 30, 15, 123456, tzinfo=UTC)
    clips = [
        ClipFactory(),
        ClipFactory(track=[[1.5, 2.5]] * 16, fps=12.5, is_synthetic=False),
        ClipFactory(track=[], n_frames=16),  # no usable track: marker null
        ClipFactory(track=[[3.0, 4.0]] * 5, n_frames=16),  # wrong length: null
    ]
    for i, clip in enumerate(clips):
        for repeat in (False, True):
            assignment = Assignment(clip, when + timedelta(seconds=i), repeat)
            expected = generic(assignment, 7)
            got = fast(assignment, 7)
            assert dict(got) == dict(expected)
            assert list(got) == list(expected)  # the same key order
    # A clip object with values missing: nulls, as DRF gives them.
    clip = clips[0]
    clip.fps = None
    assignment = Assignment(clip, None, False)
    assert dict(fast(assignment, 7)) == dict(generic(assignment, 7))
