import json

import numpy as np
import pytest
import torch

from modeling import checkpoint as ckpt
from modeling import training
from modeling.config import config_from_dict
from modeling.controls import CONTROLS, control_apply, shuffle_across_patients
from modeling.cv import Fold
from modeling.data import SpeedScaler, clipset_load
from modeling.distill import distill_fold
from tests.modeling.conftest import tiny_manifest
from tests.modeling.test_training import TinyVideoModel


class RecordingModel(TinyVideoModel):
    """Keeps every (video, speed) batch it is given, in training and evaluation."""

    seen: list = []

    def forward(self, video, speed):
        RecordingModel.seen.append((video.detach().clone(), speed.detach().clone()))
        return super().forward(video, speed)


@pytest.fixture
def recording(monkeypatch):
    RecordingModel.seen = []
    monkeypatch.setattr(ckpt, "model_create", lambda name, **kw: RecordingModel(**kw))
    return RecordingModel.seen


def _cfg(control: str):
    return config_from_dict(
        {
            "data": {"n_frames": 4, "size": 16, "control": control},
            "model": {"name": "recording"},
            "optim": {"epochs": 1, "batch_size": 4},
            "cv": {"k": 2, "val_fraction": 0.5},
            "runtime": {"progress": False, "device": "cpu"},
        }
    )


def test_shuffled_clips_take_frames_of_another_patient_of_the_same_split():
    patients = np.repeat([f"P{i}" for i in range(6)], [3, 2, 2, 3, 1, 2])
    idx = np.arange(len(patients))
    source = shuffle_across_patients(idx, patients, seed=4)
    assert sorted(source) == list(idx)  # a permutation: every video used once
    assert (patients[source] != patients[idx]).all()
    assert (shuffle_across_patients(idx, patients, seed=4) == source).all()
    assert (shuffle_across_patients(idx, patients, seed=5) != source).any()
    subset = np.array([0, 3, 7, 9])  # a split: sources stay inside it
    assert set(shuffle_across_patients(subset, patients, seed=0)) == set(subset)


def test_control_apply_zeroes_or_shuffles_only_its_input(tmp_path):
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6))
    scaler = SpeedScaler.fit(clips.speed_raw, clips.speed_names)
    data = training.device_data(clips, scaler, _cfg("none"), torch.device("cpu"))
    idx = np.arange(12)
    fold = Fold(0, train=idx[:6], val=idx[6:8], test=idx[8:])
    apply = dict(fold=fold, patient_ids=clips.patient_ids, seed=0)
    zeroed = control_apply(data, control="video_zeroed", **apply)
    assert zeroed.videos.shape == data.videos.shape and not zeroed.videos.any()
    assert torch.equal(zeroed.speed, data.speed)
    speedless = control_apply(data, control="speed_zeroed", **apply)
    assert not speedless.speed.any() and torch.equal(speedless.videos, data.videos)
    shuffled = control_apply(data, control="video_shuffled", **apply)
    assert torch.equal(shuffled.speed, data.speed)
    assert torch.equal(shuffled.targets, data.targets)
    patients = np.array(clips.patient_ids)
    for split in (fold.train, fold.val, fold.test):
        for i in split:
            (match,) = [
                j for j in idx if torch.equal(shuffled.videos[i], data.videos[j])
            ]
            assert match in split and patients[match] != patients[i]
    with pytest.raises(ValueError, match="unknown control"):
        control_apply(data, control="audio_zeroed", **apply)


@pytest.mark.parametrize("control", ["video_zeroed", "speed_zeroed"])
def test_the_model_receives_the_controlled_inputs_in_training_and_testing(
    tmp_path, recording, control
):
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6))
    summary = training.run_cv(cfg=_cfg(control), clips=clips, out_dir=tmp_path / "o")
    assert len(recording) > 4  # training steps and evaluation batches
    for video, speed in recording:
        flat = video.flatten(2)  # (B, C, T*H*W)
        video_constant = bool((flat.std(dim=2) == 0).all())
        if control == "video_zeroed":
            assert video_constant and speed.std() > 0
        else:
            assert not video_constant and not speed.any()
    assert summary["control"] == control
    written = (tmp_path / "o" / "config.yaml").read_text()
    assert f"control: {control}" in written
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["control"] == control


def test_without_a_control_the_model_sees_the_clips_as_they_are(tmp_path, recording):
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6))
    training.run_cv(cfg=_cfg("none"), clips=clips, out_dir=tmp_path / "o")
    assert all(v.flatten(2).std(dim=2).min() > 0 for v, _ in recording)
    assert all(s.std() > 0 for _, s in recording)


@pytest.mark.parametrize("control", ["none", *CONTROLS[1:]])
def test_a_distilled_student_receives_the_inputs_run_cv_gives_its_model(
    tmp_path, recording, control
):
    """Distillation applies the control exactly as run_cv does: every batch the
    student sees (training steps, validation, test) equals run_fold's on the
    same fold, so a "video zeroed" student sees black frames (pixel std 0)."""
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6))
    cfg = _cfg(control)
    fold = training.folds_for(clips, cfg)[0]
    cpu = torch.device("cpu")
    training.run_fold(
        cfg=cfg, clips=clips, fold=fold, out_dir=tmp_path / "o", device=cpu
    )
    by_run_cv = list(recording)
    recording.clear()
    distill_fold(
        cfg=cfg,
        clips=clips,
        fold=fold,
        teacher_probs=np.full((len(clips), 5), 0.2),
        teacher_weight=0.5,
        device=cpu,
    )
    assert len(recording) == len(by_run_cv) > 2  # steps, validation and test
    for (video, speed), (video_cv, speed_cv) in zip(recording, by_run_cv, strict=True):
        assert torch.equal(video, video_cv) and torch.equal(speed, speed_cv)
    pixel_std = max(float(v.flatten(2).std(dim=2).max()) for v, _ in recording)
    speed_abs = max(float(s.abs().max()) for _, s in recording)
    assert (pixel_std == 0) == (control == "video_zeroed")
    assert (speed_abs == 0) == (control == "speed_zeroed")
