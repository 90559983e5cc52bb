"""Snapshots: votes as they stood at the cutoff, a content hash that the same votes
reproduce, arrays hard-linked, patients pseudonymised, nothing rewritten later."""

import json
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Vote
from modeling.manifest import manifest_load, manifest_sha256
from registry import selectors, services, storage
from tests.factories import ExpertFactory
from tests.registry.conftest import make_voted_clips


def _rows(snapshot) -> dict[str, dict]:
    manifest = manifest_load(storage.absolute(snapshot.path))
    return {r.clip_id: r for r in manifest.records}


@pytest.mark.django_db
def test_same_votes_give_the_same_snapshot_and_hash(voted, settings):
    first = services.snapshot_create()
    second = services.snapshot_create()
    assert second.pk == first.pk
    folder = storage.absolute(first.path)
    assert folder.name == first.sha256 == manifest_sha256(folder)
    assert first.n_clips == 16 and first.n_votes == 16 * 6
    assert not any(storage.registry_dir("tmp").iterdir())  # nothing half-written


@pytest.mark.django_db
def test_a_vote_after_the_cutoff_neither_counts_nor_changes_the_snapshot(voted):
    clips, experts = voted
    cutoff = timezone.now()
    before = services.snapshot_create(cutoff=cutoff)
    manifest_bytes = (storage.absolute(before.path) / "manifest.jsonl").read_bytes()
    late = ExpertFactory()
    annotation_services.vote_create(expert=late, clip=clips[0], grade="E")
    # The same cutoff later: same votes, same snapshot.
    assert services.snapshot_create(cutoff=cutoff).pk == before.pk
    after = services.snapshot_create()
    assert after.sha256 != before.sha256
    assert (
        _rows(after)[str(clips[0].pk)].votes[4]
        == _rows(before)[str(clips[0].pk)].votes[4] + 1
    )
    # The first snapshot's files are untouched.
    assert (storage.absolute(before.path) / "manifest.jsonl").read_bytes() == (
        manifest_bytes
    )


@pytest.mark.django_db
def test_a_vote_changed_after_the_cutoff_counts_with_its_grade_at_the_cutoff(db):
    clips, experts = make_voted_clips(n_clips=6, n_patients=3, n_experts=1)
    clip = clips[0]
    vote = Vote.objects.get(clip=clip, expert=experts[0])
    original = vote.grade
    cutoff = timezone.now()
    new_grade = "E" if original != "E" else "A"
    Vote.objects.filter(pk=vote.pk).update(created_at=timezone.now())  # undo window
    annotation_services.presentation_vote_change(
        expert=experts[0], clip_id=vote.clip_id, repeat=False, grade=new_grade
    )
    counts = selectors.vote_counts_at(cutoff=cutoff)
    assert counts[clip.pk] == [int(g == original) for g in "ABCDE"]
    now = selectors.vote_counts_at(cutoff=timezone.now() + timedelta(seconds=1))
    assert now[clip.pk] == [int(g == new_grade) for g in "ABCDE"]


@pytest.mark.django_db
def test_clips_below_the_minimum_or_withdrawn_are_left_out(voted):
    clips, _ = voted
    clips[1].is_active = False
    clips[1].save()
    snapshot = services.snapshot_create(min_votes=6)
    assert str(clips[1].pk) not in _rows(snapshot)
    assert snapshot.n_clips == 15
    with pytest.raises(services.NothingToSnapshot, match="at least 7 votes"):
        services.snapshot_create(min_votes=7)


@pytest.mark.django_db
def test_arrays_are_hard_linked_and_patients_pseudonymised(voted):
    clips, _ = voted
    snapshot = services.snapshot_create()
    rows = _rows(snapshot)
    row = rows[str(clips[0].pk)]
    assert os.stat(row.array).st_ino == os.stat(clips[0].array_file.path).st_ino
    text = (storage.absolute(snapshot.path) / "manifest.jsonl").read_text()
    for clip in clips:
        assert clip.patient.code not in text
    assert row.patient_id == storage.patient_pseudonym(clips[0].patient.code)
    # Clips of one patient share a pseudonym (cross-validation groups by it).
    same = [c for c in clips if c.patient_id == clips[0].patient_id]
    assert len({rows[str(c.pk)].patient_id for c in same}) == 1
    meta = json.loads((storage.absolute(snapshot.path) / "dataset.json").read_text())
    assert meta["synthetic"] is True and meta["min_votes"] == 5


@pytest.mark.django_db
def test_fully_voted_clips_since_the_last_snapshot_are_counted(voted, settings):
    settings.VOTES_PER_CLIP = 6
    assert selectors.clips_fully_voted_since(snapshot=None) == 16
    snapshot = services.snapshot_create()
    assert len(snapshot.fully_voted_ids) == 16
    assert selectors.clips_fully_voted_since(snapshot=snapshot) == 0
    more, _ = make_voted_clips(n_clips=3, n_patients=2, seed=1)
    assert selectors.clips_fully_voted_since(snapshot=snapshot) == 3


@pytest.mark.django_db
def test_a_clip_whose_array_is_broken_is_left_out_and_withdrawn_with_why(voted):
    from pathlib import Path

    import numpy as np

    from annotation.models import Clip

    clips, _ = voted
    Path(clips[0].array_file.path).write_bytes(b"not a numpy file at all")
    Path(clips[1].array_file.path).unlink()
    np.save(clips[2].array_file.path, np.zeros((4, 8, 8), np.float32))
    snapshot = services.snapshot_create()
    left_out = {c.pk for c in clips[:3]}
    assert left_out.isdisjoint(snapshot.clip_ids)
    assert set(snapshot.clip_ids) == {c.pk for c in clips[3:]}
    reasons = dict(
        Clip.objects.filter(pk__in=left_out).values_list("pk", "review_reason")
    )
    assert reasons[clips[0].pk].endswith("its frame array cannot be read (ValueError)")
    assert reasons[clips[1].pk].endswith("its frame array is missing")
    assert "float32 (4, 8, 8)" in reasons[clips[2].pk]
    assert all("/" not in reason for reason in reasons.values())  # no server path
    assert not Clip.objects.filter(pk__in=left_out, is_active=True).exists()
    assert Vote.objects.filter(clip_id__in=left_out).exists()  # votes are kept
