"""The dataset manifest: one writer and reader, and a hash that identifies the data."""

import json

import numpy as np
import pytest

from modeling import checkpoint as ckpt
from modeling.data import clipset_load
from modeling.manifest import (
    ManifestError,
    manifest_load,
    manifest_sha256,
    manifest_write,
)
from tests.modeling.conftest import tiny_checkpoint


def _rows(votes_of_first=(3, 1, 0, 0, 0)):
    rng = np.random.default_rng(0)
    return [
        {
            "clip_id": f"c{i}",
            "patient_id": f"P{i % 2}",
            "votes": list(votes_of_first) if i == 0 else [0, 0, 2, 2, 0],
            "speed": 10.0 * i,
            "kinematics": {"vcl": 1.0 + i},
            "frames": rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8),
            "latent_quality": 0.25 * i,
        }
        for i in range(3)
    ]


def test_the_same_clips_and_votes_give_the_same_hash(tmp_path):
    first = manifest_write(tmp_path / "a", rows=_rows(), meta={"source": "x"})
    again = manifest_write(tmp_path / "b", rows=_rows(), meta={"source": "y"})
    meta = json.loads((first / "dataset.json").read_text())
    assert meta["manifest_sha256"] == manifest_sha256(first) == manifest_sha256(again)
    assert len(meta["manifest_sha256"]) == 64 and meta["n_clips"] == 3


def test_a_changed_vote_or_frame_changes_the_hash(tmp_path):
    base = manifest_sha256(manifest_write(tmp_path / "a", rows=_rows()))
    vote = manifest_sha256(manifest_write(tmp_path / "b", rows=_rows((2, 2, 0, 0, 0))))
    rows = _rows()
    rows[1]["frames"] = rows[1]["frames"].copy()
    rows[1]["frames"][0, 0, 0, 0] ^= 1
    frame = manifest_sha256(manifest_write(tmp_path / "c", rows=rows))
    assert len({base, vote, frame}) == 3


def test_rows_round_trip_with_their_extra_keys(tmp_path):
    rows = _rows()
    out = manifest_write(tmp_path / "d", rows=rows)
    manifest = manifest_load(out)
    assert [r.clip_id for r in manifest.records] == ["c0", "c1", "c2"]
    assert manifest.records[2].extra == {"latent_quality": 0.5}
    assert manifest.records[0].votes == [3, 1, 0, 0, 0]
    assert np.array_equal(np.load(manifest.records[1].array), rows[1]["frames"])
    clips = clipset_load(out)
    assert clips.manifest_sha256 == manifest.sha256 == manifest_sha256(out)


def test_a_bad_row_is_refused_before_anything_names_it(tmp_path):
    rows = _rows()
    rows[1]["votes"] = [1, 2, 3]
    with pytest.raises(ManifestError, match="row 2.*5 counts"):
        manifest_write(tmp_path / "e", rows=rows, require_votes=True)
    rows = _rows()
    rows[2]["clip_id"] = "c0"
    with pytest.raises(ManifestError, match="twice"):
        manifest_write(tmp_path / "f", rows=rows)


def test_checkpoints_record_the_hash_of_their_training_data(tmp_path, tiny_data):
    out = tiny_checkpoint(tmp_path / "ckpt", tiny_data)
    meta = ckpt.checkpoint_meta(out)
    assert meta["dataset"]["manifest_sha256"] == manifest_sha256(tiny_data)
