"""Checkpoint selection by two rules: cv.selection_metric and cv.also_select_by."""

import json

import numpy as np
import pytest

from modeling import training
from modeling.data import clipset_load
from modeling.metrics import metrics_all
from modeling.results import fold_result_load
from tests.modeling.conftest import tiny_manifest
from tests.modeling.test_training import _cfg, tiny_registry  # noqa: F401


def _read(path):
    return json.loads(path.read_text())


def test_both_rules_pick_their_own_best_validation_epoch_and_are_tested(
    tmp_path,
    tiny_registry,  # noqa: F811
):
    clips = clipset_load(
        tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6),
        speed_features=["speed", "vcl"],
    )
    cfg = _cfg(
        loss={"name": "mse"},
        optim={"epochs": 6, "lr": 0.05},
        cv={"selection_metric": "emd", "also_select_by": "loss"},
    )
    summary = training.run_cv(cfg=cfg, clips=clips, out_dir=tmp_path / "o")
    targets = clips.targets.numpy().astype(np.float64)
    differ = 0
    for index in (0, 1):
        fold_dir = tmp_path / "o" / f"fold_{index}"
        metrics = _read(fold_dir / "metrics.json")
        history = [row["val"] for row in metrics["history"]]
        # each rule's epoch is the first with its lowest validation value
        assert metrics["best_epoch"] == 1 + int(np.argmin([v["emd"] for v in history]))
        assert metrics["best_epoch_alt"] == 1 + int(
            np.argmin([v["mse"] for v in history])
        )
        tested = _read(fold_dir / "test_predictions.json")
        idx = [clips.clip_ids.index(c) for c in tested["clip_ids"]]
        for key, probs in (("test", "probs"), ("test_alt", "probs_alt")):
            again = metrics_all(np.array(tested[probs]), targets[idx])
            assert again["emd"] == pytest.approx(metrics[key]["emd"], abs=1e-5)
        if metrics["best_epoch"] != metrics["best_epoch_alt"]:
            differ += 1  # two checkpoints: their test predictions differ
            assert not np.allclose(tested["probs"], tested["probs_alt"])
        result = fold_result_load(tmp_path / "o", index, clips)
        assert result.test_probs_alt.shape == (len(idx), 5)
    assert differ  # this setting makes the rules disagree at least once
    assert summary["selection_alt"] == "loss"
    assert summary["mean_alt"]["emd"] == pytest.approx(
        np.mean([f["test_alt"]["emd"] for f in summary["folds"]])
    )
    alt_rows = (tmp_path / "o" / "oof_predictions_alt.jsonl").read_text().splitlines()
    assert len(alt_rows) == len(clips)


def test_one_rule_writes_no_second_selection(tmp_path, tiny_registry):  # noqa: F811
    clips = clipset_load(
        tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6),
        speed_features=["speed", "vcl"],
    )
    summary = training.run_cv(cfg=_cfg(), clips=clips, out_dir=tmp_path / "o")
    assert "mean_alt" not in summary
    assert not (tmp_path / "o" / "oof_predictions_alt.jsonl").exists()
    assert "probs_alt" not in _read(tmp_path / "o" / "fold_0" / "test_predictions.json")
