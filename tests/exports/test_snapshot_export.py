"""An export with a snapshot carries the snapshot's frozen votes: its training
manifest is the snapshot's rows under pseudonyms, the exporting instance rebuilds
the snapshot's manifest from the zip and gets its SHA-256, votes given or changed
after the cutoff stay out, and the bundle still imports."""

import csv
import io
import json
import shutil
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Clip, Vote, VoteHistory
from exports.bundle import bundle_write
from exports.bundle_snapshot import SnapshotUnexportable
from exports.importer import bundle_import
from exports.pseudonyms import clip_pseudonym
from modeling.manifest import manifest_load, manifest_sha256, manifest_write
from registry import storage
from registry.services import snapshot_create
from tests.registry.conftest import make_voted_clips

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def snapshot_then_more_votes():
    """Snapshot X of 8 clips with 5 votes each, then: a sixth vote on two clips, a
    changed vote on a third, a clip withdrawn, and a new clip voted after X."""
    now = timezone.now()
    clips, experts = make_voted_clips(
        n_clips=8, n_patients=4, n_experts=5, at=now - timedelta(hours=2)
    )
    snapshot = snapshot_create(cutoff=now - timedelta(hours=1))
    later = make_voted_clips(n_clips=1, n_patients=1, n_experts=6, at=now)[0]
    new_clip, late_expert = later[0], Vote.objects.filter(clip=later[0])[0].expert
    annotation_services.votes_bulk_create_simulated(
        votes=[(late_expert.pk, clip.pk, "A", now) for clip in clips[:2]]
    )
    changed = Vote.objects.filter(clip=clips[2]).order_by("pk")[0]
    new_grade = "E" if changed.grade != "E" else "A"
    VoteHistory.objects.create(
        vote_id=changed.pk,
        expert_id=changed.expert_id,
        clip_id=changed.clip_id,
        action="change",
        grade=new_grade,
        previous_grade=changed.grade,
        is_repeat=False,
        at=now,
    )
    Vote.objects.filter(pk=changed.pk).update(grade=new_grade, updated_at=now)
    annotation_services.clips_set_active(clip_ids=[clips[3].pk], active=False)
    return snapshot, clips, new_clip


def _rows(text: bytes) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _rebuilt_sha256(bundle_dir, rows, tmp_path) -> str:
    """snapshot.json's recipe, on the exporting instance: ids back (only it can
    pair a pseudonym with its id), rows by id, written by the snapshot writer's
    own manifest_write (which hashes the zip's arrays afresh)."""
    id_of = {clip_pseudonym(pk): pk for pk in Clip.objects.values_list("pk", flat=True)}
    out = tmp_path / "rebuilt"
    (out / "clips").mkdir(parents=True)
    rebuilt = []
    for row in rows:
        clip_id = id_of[row["clip_id"]]
        array = f"clips/{clip_id}.npy"
        shutil.copyfile(bundle_dir / row["array"], out / array)
        rest = {k: v for k, v in row.items() if k != "array_sha256"}
        rebuilt.append({**rest, "clip_id": str(clip_id), "array": array})
    rebuilt.sort(key=lambda row: int(row["clip_id"]))
    manifest_write(out, rows=rebuilt)
    return manifest_sha256(out)


def test_an_export_with_a_snapshot_rebuilds_its_manifest_and_sha256(
    snapshot_then_more_votes, tmp_path
):
    snapshot, clips, new_clip = snapshot_then_more_votes
    out = tmp_path / "export.zip"
    summary = bundle_write(out, snapshot=snapshot)
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "bundle")
        names = set(zf.namelist())
    bundle_dir = tmp_path / "bundle"
    rows = _rows((bundle_dir / "manifest.jsonl").read_bytes())

    assert _rebuilt_sha256(bundle_dir, rows, tmp_path) == snapshot.sha256
    # The snapshot's frozen votes: 5 each, though today two clips have 6 and one
    # has a changed grade; the clip withdrawn since is there, the new one is not.
    by_name = {row["clip_id"]: row for row in rows}
    assert sorted(by_name) == sorted(clip_pseudonym(c.pk) for c in clips)
    assert [r["clip_id"] for r in rows] == sorted(by_name)  # pseudonym order
    assert all(sum(row["votes"]) == 5 for row in rows)
    distributions = {
        row["clip"]: row
        for row in csv.DictReader(
            io.StringIO((bundle_dir / "distributions.csv").read_text())
        )
    }
    for clip in clips[:2]:
        assert distributions[clip_pseudonym(clip.pk)]["n_votes"] == "6"
    changed = clip_pseudonym(clips[2].pk)
    today = [int(distributions[changed][f"n_{g}"]) for g in "abcde"]
    assert by_name[changed]["votes"] != today and sum(today) == 5
    assert f"clips/{clip_pseudonym(clips[3].pk)}.npy" in names  # from X's folder
    assert clip_pseudonym(new_clip.pk) not in by_name
    # Nothing names a clip by its id; the manifest reads as a modeling dataset.
    assert all(name.startswith("C-") for name in by_name)
    loaded = manifest_load(bundle_dir)
    assert loaded.sha256 == loaded.meta["manifest_sha256"]
    assert loaded.meta["snapshot_sha256"] == snapshot.sha256

    fmt = json.loads((bundle_dir / "FORMAT.json").read_text())["training_manifest"]
    assert fmt["source"] == "snapshot" and fmt["snapshot_sha256"] == snapshot.sha256
    assert (fmt["n_clips"], fmt["n_clips_not_in_snapshot"]) == (8, 1)
    assert summary["n_training_clips"] == 8
    listed = _rows((bundle_dir / "clips.jsonl").read_bytes())
    in_training = {c["clip"] for c in listed if c["in_training_manifest"]}
    assert in_training == set(by_name) - {clip_pseudonym(clips[3].pk)}
    sheet = (bundle_dir / "datasheet.md").read_text()
    assert f"snapshot {snapshot.sha256[:12]}'s 8 clips" in sheet
    frozen = json.loads((bundle_dir / "snapshot.json").read_text())
    assert frozen["sha256"] == snapshot.sha256 and "rebuild" in frozen

    imported = bundle_import(out)
    assert imported["clips"] == 8  # today's active clips: 7 of X's and the new one


def test_an_export_without_a_snapshot_still_trains_on_todays_votes(
    snapshot_then_more_votes, tmp_path
):
    snapshot, clips, _ = snapshot_then_more_votes
    out = tmp_path / "export.zip"
    bundle_write(out)
    with zipfile.ZipFile(out) as zf:
        rows = {row["clip_id"]: row for row in _rows(zf.read("manifest.jsonl"))}
        fmt = json.loads(zf.read("FORMAT.json"))["training_manifest"]
    assert fmt["source"] == "current votes"
    assert sum(rows[clip_pseudonym(clips[0].pk)]["votes"]) == 6


def test_a_snapshot_whose_manifest_changed_on_disk_is_not_exported(
    snapshot_then_more_votes, tmp_path
):
    snapshot, _, _ = snapshot_then_more_votes
    manifest = storage.absolute(snapshot.path) / "manifest.jsonl"
    manifest.write_bytes(manifest.read_bytes().replace(b'"votes": [', b'"votes":['))
    with pytest.raises(SnapshotUnexportable, match="no longer matches its SHA-256"):
        bundle_write(tmp_path / "export.zip", snapshot=snapshot)
