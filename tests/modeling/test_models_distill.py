"""Distilling the clinic model from a TimeSformer cross-validation run."""

import json

import numpy as np
import pytest
import torch

from modeling import checkpoint as ckpt
from modeling import training
from modeling.config import config_from_dict
from modeling.data import SpeedScaler, clipset_load
from modeling.distill import distill_cv, distill_fold, folds_read, soft_targets
from modeling.models import TINY_KWARGS
from modeling.synthetic import write_synthetic_manifest
from tests.modeling.conftest import tiny_manifest
from tests.modeling.test_training import TinyVideoModel


def test_soft_targets_mix_panel_and_teacher():
    panel = torch.tensor([[1.0, 0, 0, 0, 0]])
    teacher = torch.tensor([[0, 0, 0, 0, 1.0]])
    mixed = soft_targets(panel=panel, teacher=teacher, teacher_weight=0.25)
    torch.testing.assert_close(mixed, torch.tensor([[0.75, 0, 0, 0, 0.25]]))


def test_soft_targets_reject_a_weight_outside_zero_one():
    with pytest.raises(ValueError, match=r"teacher_weight must be in \[0, 1\]"):
        soft_targets(panel=torch.ones(1, 5), teacher=torch.ones(1, 5), teacher_weight=2)


def _cfg(name):
    return config_from_dict(
        {
            "data": {"n_frames": 4, "size": 32},
            "model": {"name": name, "kwargs": dict(TINY_KWARGS[name])},
            "optim": {"epochs": 1, "batch_size": 4},
            "cv": {"k": 2, "val_fraction": 0.5},
            "runtime": {"progress": False, "device": "cpu"},
        }
    )


def test_clinic_model_distils_from_every_teacher_fold_on_the_same_folds(tmp_path):
    data = write_synthetic_manifest(
        tmp_path / "data", n_clips=12, n_patients=6, seed=0, n_frames=4, size=32
    )
    clips = clipset_load(data, speed_features=["speed"])
    training.run_cv(cfg=_cfg("timesformer"), clips=clips, out_dir=tmp_path / "teacher")
    summary = distill_cv(
        cfg=_cfg("clinic"),
        clips=clips,
        teacher_dir=tmp_path / "teacher",
        out_dir=tmp_path / "clinic",
        teacher_weight=0.5,
    )
    assert [f["index"] for f in summary["folds"]] == [0, 1]
    folds = folds_read(tmp_path / "teacher", clips)
    for fold, result in zip(folds, summary["folds"], strict=True):
        assert result["test"]["n_clips"] == len(fold.test)
    assert 0 < summary["mean"]["emd"] < 1

    # The ratio from the files each run wrote, not from the summary itself: the
    # student's per-fold test EMD in its checkpoints, the teacher's per fold.
    def fold_emd(run_dir, index, *, checkpoint):
        folder = run_dir / f"fold_{index}"
        if checkpoint:
            meta = json.loads((folder / "checkpoint" / "checkpoint.json").read_text())
            return meta["metrics"]["test"]["emd"]
        return json.loads((folder / "metrics.json").read_text())["test"]["emd"]

    student = [fold_emd(tmp_path / "clinic", i, checkpoint=True) for i in (0, 1)]
    teacher = [fold_emd(tmp_path / "teacher", i, checkpoint=False) for i in (0, 1)]
    assert summary["emd_ratio_to_teacher"] == pytest.approx(
        (sum(student) / 2) / (sum(teacher) / 2)
    )
    saved = json.loads((tmp_path / "clinic" / "distill_metrics.json").read_text())
    assert saved["student"] == "clinic"
    assert (tmp_path / "clinic" / "fold_1" / "checkpoint").is_dir()


def _emd_by_hand(pred, target):
    """Mean over clips of the mean squared CDF difference (eq. 6)."""
    pred, target = np.asarray(pred), np.asarray(target)
    target = target / target.sum(1, keepdims=True)
    return float(((pred.cumsum(1) - target.cumsum(1)) ** 2).mean(1).mean())


def test_the_student_is_selected_and_tested_against_the_panel_not_the_mix(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(ckpt, "model_create", lambda name, **kw: TinyVideoModel(**kw))
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6))
    cfg = config_from_dict(
        {
            "data": {"n_frames": 2, "size": 16},
            "model": {"name": "tiny"},
            "optim": {"epochs": 1, "batch_size": 4},
            "cv": {"k": 2, "val_fraction": 0.5},
            "runtime": {"progress": False, "device": "cpu"},
        }
    )
    fold = training.folds_for(clips, cfg)[0]
    teacher = np.zeros((len(clips), 5))
    teacher[:, 4] = 1.0  # a teacher sure of grade E for every clip
    result = distill_fold(
        cfg=cfg,
        clips=clips,
        fold=fold,
        teacher_probs=teacher,
        teacher_weight=1.0,  # the student learns from the teacher alone
        device=torch.device("cpu"),
    )
    panel = clips.votes.numpy()
    test_probs = result["test_probs"]
    assert result["test"]["emd"] == pytest.approx(
        _emd_by_hand(test_probs, panel[fold.test])
    )
    assert (
        abs(result["test"]["emd"] - _emd_by_hand(test_probs, teacher[fold.test])) > 1e-3
    )
    # One epoch: the selected model is the last one; its validation EMD is the
    # panel's too.
    val_probs = training.evaluate(
        model=result["model"],
        data=training.fold_data(
            clips,
            SpeedScaler.fit(clips.speed_raw[fold.train], clips.speed_names),
            cfg,
            torch.device("cpu"),
            fold,
        ),
        idx=fold.val,
        cfg=cfg,
        device=torch.device("cpu"),
    )
    assert result["val_emd"] == pytest.approx(_emd_by_hand(val_probs, panel[fold.val]))
    assert abs(result["val_emd"] - _emd_by_hand(val_probs, teacher[fold.val])) > 1e-3
