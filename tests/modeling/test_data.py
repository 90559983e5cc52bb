import json

import numpy as np
import pytest
import torch

from modeling.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    batch_gather,
    batch_prepare,
    frame_indices,
)
from modeling.config import AugmentConfig
from modeling.data import SpeedScaler, clipset_load
from modeling.manifest import ManifestError
from tests.modeling.conftest import tiny_manifest


def test_manifest_loads_into_one_uint8_tensor(tiny_data):
    clips = clipset_load(tiny_data, speed_features=["speed", "vcl"])
    assert clips.videos.shape == (2, 4, 32, 32, 3)
    assert clips.videos.dtype == torch.uint8
    assert clips.speed_raw.shape == (2, 2)
    assert clips.targets.sum(1).tolist() == pytest.approx([1.0, 1.0])
    assert clips.votes[0].tolist() == [6, 2, 0, 0, 0]
    assert clips.modes.tolist() == [0, 1]


def _rewrite_first_row(root, **changes):
    path = root / "manifest.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0].update(changes)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"votes": [1, -1, 0, 0, 0]}, "must not be negative"),
        ({"votes": [0, 0, 0, 0, 0]}, "no votes"),
        ({"votes": [1, 2, 3]}, "list of 5 counts"),
        ({"votes": [1.5, 0, 0, 0, 0]}, "integers"),
        ({"array": "clips/missing.npy"}, "is missing"),
        ({"speed": "fast"}, "speed must be a number"),
    ],
)
def test_bad_manifest_rows_are_clear_errors(tiny_data, changes, message):
    _rewrite_first_row(tiny_data, **changes)
    with pytest.raises(ManifestError, match=message):
        clipset_load(tiny_data)


def test_wrong_dtype_and_shape_are_clear_errors(tiny_data):
    np.save(tiny_data / "clips" / "c00000.npy", np.zeros((4, 32, 32, 3), np.float32))
    with pytest.raises(ManifestError, match="dtype float32, expected uint8"):
        clipset_load(tiny_data)
    np.save(tiny_data / "clips" / "c00000.npy", np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(ManifestError, match=r"expected \(T, H, W, 3\)"):
        clipset_load(tiny_data)
    np.save(tiny_data / "clips" / "c00000.npy", np.zeros((5, 32, 32, 3), np.uint8))
    with pytest.raises(ManifestError, match="same"):
        clipset_load(tiny_data)


def test_missing_manifest_and_metadata_are_clear_errors(tmp_path, tiny_data):
    with pytest.raises(ManifestError, match="no manifest"):
        clipset_load(tmp_path / "nowhere")
    (tiny_data / "dataset.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ManifestError, match="format"):
        clipset_load(tiny_data)


def test_non_numeric_speed_feature_is_rejected(tiny_data):
    with pytest.raises(ManifestError, match="motility_class"):
        clipset_load(tiny_data, speed_features=["motility_class"])
    with pytest.raises(ManifestError, match="'alh'"):
        clipset_load(tiny_data, speed_features=["alh"])


def test_speed_scaler_uses_only_the_statistics_it_was_fitted_on():
    train = torch.tensor([[1.0], [3.0]])
    scaler = SpeedScaler.fit(train, ["speed"])
    assert scaler.transform(train).flatten().tolist() == pytest.approx([-1.0, 1.0])
    assert scaler.transform(torch.tensor([[5.0]])).item() == pytest.approx(3.0)
    constant = SpeedScaler.fit(torch.ones(3, 1), ["speed"])
    assert constant.std == [1.0]
    assert SpeedScaler.from_dict(scaler.to_dict()) == scaler


def test_frame_indices_are_evenly_spaced_8_of_16():
    idx = frame_indices(16, 8, batch=2)
    assert idx.tolist() == [[0, 2, 4, 6, 8, 10, 12, 14]] * 2
    jittered = frame_indices(16, 8, batch=64, jitter=True)
    offsets = jittered - idx[:1]
    assert set(offsets.unique().tolist()) == {0, 1}
    assert (offsets == offsets[:, :1]).all()  # one offset per clip
    assert frame_indices(4, 4, batch=1).tolist() == [[0, 1, 2, 3]]


def test_batch_prepare_resizes_and_normalises_on_the_device():
    frames = torch.full((2, 3, 10, 10, 3), 255, dtype=torch.uint8)
    out = batch_prepare(frames, size=24)
    assert out.shape == (2, 3, 3, 24, 24)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert out[:, :, 0, 12, 12][0].tolist() == pytest.approx(expected, rel=1e-5)


def test_eval_preparation_is_deterministic_and_training_augments():
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 255, (2, 2, 16, 16, 3), dtype=np.uint8))
    a = batch_prepare(frames, size=16)
    assert torch.equal(a, batch_prepare(frames, size=16))
    cfg = AugmentConfig(rotation_degrees=90.0)
    gen = torch.Generator().manual_seed(0)
    b = batch_prepare(frames, size=16, augment=cfg, generator=gen)
    assert b.shape == a.shape and not torch.allclose(a, b)
    off = AugmentConfig(enabled=False)
    assert torch.equal(batch_prepare(frames, size=16, augment=off), a)


def test_augmentation_applies_one_transform_to_every_frame_of_a_clip():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (1, 1, 16, 16, 3), dtype=np.uint8)
    frames = torch.from_numpy(np.repeat(frame, 3, axis=1))
    out = batch_prepare(
        frames, size=16, augment=AugmentConfig(), generator=torch.Generator()
    )
    assert torch.allclose(out[:, :, 0], out[:, :, 1])
    assert torch.allclose(out[:, :, 0], out[:, :, 2])


def test_batch_prepare_rejects_float_frames():
    with pytest.raises(ValueError, match="uint8"):
        batch_prepare(torch.zeros(1, 2, 8, 8, 3), size=8)


def test_batch_gather_picks_clips_and_frames(tmp_path):
    root = tiny_manifest(tmp_path / "d", n_clips=3, n_frames=6)
    clips = clipset_load(root)
    idx = frame_indices(6, 3, batch=2)
    out = batch_gather(clips.videos, torch.tensor([2, 0]), idx, torch.device("cpu"))
    assert out.shape == (2, 3, 32, 32, 3)
    assert torch.equal(out[0, 1], clips.videos[2, 2])
    assert torch.equal(out[1, 2], clips.videos[0, 4])
