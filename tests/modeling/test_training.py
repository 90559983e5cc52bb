import json

import numpy as np
import pytest
import torch
from torch import nn

from modeling import checkpoint as ckpt
from modeling import results, training
from modeling.config import config_from_dict
from modeling.data import clipset_load
from tests.modeling.conftest import fold0_served_and_oof, tiny_manifest


class TinyVideoModel(nn.Module):
    """Conv3d + pooling + linear head over [features, speed]; returns logits."""

    def __init__(self, *, n_speed=1, hidden=8, heads=1, weights="random"):
        super().__init__()
        self.conv = nn.Conv3d(3, hidden, 3, padding=1)
        self.heads = nn.ModuleList(nn.Linear(hidden + n_speed, 5) for _ in range(heads))

    def _features(self, video, speed):
        f = torch.relu(self.conv(video)).mean(dim=(2, 3, 4))
        return torch.cat([f, speed], dim=1)

    def forward(self, video, speed):
        f = self._features(video, speed)
        return torch.stack([h(f) for h in self.heads]).mean(0)


class TinyMultiHead(TinyVideoModel):
    def __init__(self, **kw):
        super().__init__(heads=3, **kw)
        self.aux_calls = 0

    def training_outputs(self, video, speed):
        f = self._features(video, speed)
        self.aux_calls += 1
        return [h(f) for h in self.heads], torch.tensor(0.5)


@pytest.fixture
def tiny_registry(monkeypatch):
    builders = {"tiny": TinyVideoModel, "tiny_multi": TinyMultiHead}
    monkeypatch.setattr(ckpt, "model_create", lambda name, **kw: builders[name](**kw))


def _cfg(**overrides):
    base = {
        "data": {"n_frames": 4, "size": 32, "speed_features": ["speed", "vcl"]},
        "model": {"name": "tiny"},
        "optim": {"epochs": 2, "batch_size": 4, "lr": 0.05},
        "cv": {"k": 2, "val_fraction": 0.5},
        "runtime": {"progress": False, "device": "cpu"},
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return config_from_dict(base)


def test_run_cv_writes_oof_predictions_for_every_clip_and_checkpoints(
    tmp_path, tiny_registry
):
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root, speed_features=["speed", "vcl"])
    summary = training.run_cv(cfg=_cfg(), clips=clips, out_dir=tmp_path / "out")
    out = tmp_path / "out"
    rows = [
        json.loads(x) for x in (out / "oof_predictions.jsonl").read_text().splitlines()
    ]
    assert sorted(r["clip_id"] for r in rows) == sorted(clips.clip_ids)
    assert all(r["fold"] in (0, 1) for r in rows)
    assert all(sum(r["pred"]) == pytest.approx(1.0, abs=1e-4) for r in rows)
    assert (out / "config.yaml").is_file() and (out / "metrics.json").is_file()
    assert set(summary["mean"]) >= {"emd", "mse", "jsd", "ce", "hi", "macro_f1"}
    assert len(summary["folds"]) == 2
    assert "emd" in summary["baseline_mean_distribution"]["mean"]
    folds = json.loads((out / "folds.json").read_text())
    for fold in folds.values():
        patients = {
            side: {clips.patient_ids[clips.clip_ids.index(c)] for c in ids}
            for side, ids in fold.items()
        }
        assert not patients["test"] & (patients["train"] | patients["val"])
    meta = ckpt.checkpoint_meta(out / "fold_0" / "checkpoint")
    assert meta["model"]["kwargs"]["n_speed"] == 2
    assert meta["config"]["optim"]["epochs"] == 2
    assert meta["speed_scaler"]["names"] == ["speed", "vcl"]


def test_checkpoint_reloads_and_reproduces_the_fold_predictions(
    tmp_path, tiny_registry
):
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root, speed_features=["speed", "vcl"])
    training.run_cv(cfg=_cfg(), clips=clips, out_dir=tmp_path / "out")
    result, served, fold0 = fold0_served_and_oof(
        tmp_path / "out", root, tmp_path / "pred"
    )
    assert fold0
    for row in fold0:
        assert served[row["clip_id"]] == pytest.approx(row["pred"], abs=1e-5)
    assert 0 <= result["emd"] <= 1
    assert (tmp_path / "pred" / "metrics.json").is_file()


def test_checkpoint_is_chosen_on_validation_clips_never_on_test(
    tmp_path, tiny_registry, monkeypatch
):
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root)
    seen = []
    real_evaluate = training.evaluate

    def spy(*, idx, **kw):
        seen.append(set(idx.tolist()))
        return real_evaluate(idx=idx, **kw)

    monkeypatch.setattr(training, "evaluate", spy)
    cfg = _cfg(data={"speed_features": ["speed"]}, optim={"epochs": 3})
    training.run_cv(cfg=cfg, clips=clips, out_dir=tmp_path / "out")
    folds = json.loads((tmp_path / "out" / "folds.json").read_text())
    for f in range(2):
        val = {clips.clip_ids.index(c) for c in folds[f"fold_{f}"]["val"]}
        test = {clips.clip_ids.index(c) for c in folds[f"fold_{f}"]["test"]}
        calls = seen[f * 4 : (f + 1) * 4]  # 3 validation passes, then the test pass
        assert all(c == val for c in calls[:3])
        assert calls[3] == test


def test_training_reduces_the_loss(tmp_path, tiny_registry):
    root = tiny_manifest(tmp_path / "d", n_clips=10, n_patients=5)
    clips = clipset_load(root)
    cfg = _cfg(
        data={"speed_features": ["speed"]},
        optim={"epochs": 30, "batch_size": 8, "lr": 0.5},
        augment={"enabled": False},
    )
    result = training.train_final(cfg=cfg, clips=clips, out_dir=tmp_path / "out")
    history = json.loads((tmp_path / "out" / "final" / "metrics.json").read_text())
    losses = [h["train_loss"] for h in history["history"]]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    assert result.best_epoch >= 1


def test_multi_head_models_train_through_training_outputs(tmp_path, tiny_registry):
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root)
    model = TinyMultiHead(n_speed=1)
    video = torch.zeros(2, 3, 4, 8, 8)
    speed = torch.zeros(2, 1)
    target = torch.tensor([[1.0, 0, 0, 0, 0]] * 2)
    loss = training.loss_compute(model, video, speed, target, "emd")
    heads, _ = model.training_outputs(video, speed)
    expected = (
        sum(training.loss_get("emd")(torch.softmax(h, -1), target) for h in heads) / 3
        + 0.5
    )
    assert loss.item() == pytest.approx(expected.item())
    cfg = _cfg(data={"speed_features": ["speed"]}, model={"name": "tiny_multi"})
    training.run_cv(cfg=cfg, clips=clips, out_dir=tmp_path / "out")


def test_model_kwargs_may_not_override_the_speed_width(tiny_registry):
    cfg = _cfg(model={"kwargs": {"n_speed": 3}})
    with pytest.raises(ValueError, match="n_speed"):
        training.model_for(cfg, 1, torch.device("cpu"))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="checkpoint.json is missing"):
        ckpt.checkpoint_meta(tmp_path)


def test_folds_run_apart_and_finished_later_match_the_whole_protocol(
    tmp_path, tiny_registry
):
    # The job system trains each fold in its own process and finishes once all
    # are written: the result must equal run_cv's on the same data and config.
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root, speed_features=["speed", "vcl"])
    whole = training.run_cv(cfg=_cfg(), clips=clips, out_dir=tmp_path / "whole")
    apart = tmp_path / "apart"
    folds = training.cv_prepare(cfg=_cfg(), clips=clips, out_dir=apart)
    for fold in reversed(folds):  # order must not matter
        training.run_fold(
            cfg=_cfg(),
            clips=clips,
            fold=training.folds_for(clips, _cfg())[fold.index],
            out_dir=apart,
            device=torch.device("cpu"),
        )
    finished = [results.fold_result_load(apart, f.index, clips) for f in folds]
    summary = training.cv_finish(
        cfg=_cfg(),
        clips=clips,
        folds=folds,
        results=finished,
        out_dir=apart,
        device="cpu",
        wall_s=0.0,
    )
    assert summary["mean"]["emd"] == pytest.approx(whole["mean"]["emd"], abs=1e-6)
    assert summary["oof"]["emd"] == pytest.approx(whole["oof"]["emd"], abs=1e-6)
    with pytest.raises(ValueError, match="every fold"):
        training.cv_finish(
            cfg=_cfg(),
            clips=clips,
            folds=folds,
            results=finished[:1],
            out_dir=apart,
            device="cpu",
            wall_s=0.0,
        )


def test_progress_reports_every_step_and_epoch_and_cancel_stops_between_steps(
    tmp_path, tiny_registry
):
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root, speed_features=["speed", "vcl"])
    cfg = _cfg(optim={"epochs": 3, "batch_size": 2})
    fold = training.folds_for(clips, cfg)[0]
    events = []
    training.run_fold(
        cfg=cfg,
        clips=clips,
        fold=fold,
        out_dir=tmp_path / "a",
        device=torch.device("cpu"),
        on_progress=events.append,
    )
    steps_per_epoch = len(fold.train) // 2
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(steps) == 3 * steps_per_epoch
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all("emd" in e["val"] and e["fold"] == 0 for e in epochs)
    assert steps[-1] == {
        "event": "step",
        "fold": 0,
        "epochs": 3,
        "epoch": 3,
        "step": steps_per_epoch,
        "steps": steps_per_epoch,
    }

    seen = []

    def cancel_after_two_steps(event):
        seen.append(event)
        if len([e for e in seen if e["event"] == "step"]) == 2:
            raise training.TrainingCancelled("asked")

    with pytest.raises(training.TrainingCancelled):
        training.run_fold(
            cfg=cfg,
            clips=clips,
            fold=fold,
            out_dir=tmp_path / "b",
            device=torch.device("cpu"),
            on_progress=cancel_after_two_steps,
        )
    assert seen[-1]["event"] == "step"  # nothing ran after the cancelling step
    assert len([e for e in seen if e["event"] == "step"]) == 2
    assert not (tmp_path / "b" / "fold_0" / "checkpoint").exists()
