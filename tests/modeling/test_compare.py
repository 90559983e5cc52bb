import numpy as np
import pytest

from modeling import checkpoint as ckpt
from modeling.compare import (
    SMALL_KWARGS,
    best_row,
    compare_run,
    model_kwargs_fit,
    profile_kwargs,
)
from modeling.compare_report import compare_markdown
from modeling.config import config_from_dict
from modeling.cv import Fold
from modeling.data import clipset_load
from modeling.references import (
    BASELINE_NAME,
    CHANCE_NAME,
    ORACLE_KNN_NAME,
    SHAPE_KNN_NAME,
    SPEED_KNN_NAME,
    knn_reference,
    reference_rows,
)
from modeling.synthetic import write_synthetic_manifest
from modeling.training import folds_for
from tests.modeling.conftest import tiny_manifest
from tests.modeling.test_training import TinyVideoModel

METRICS = ("emd", "mse", "jsd", "ce", "hi", "macro_hi", "macro_f1", "mode_accuracy")


def _one_epoch_base(*, n_frames: int, size: int):
    return config_from_dict(
        {
            "data": {"n_frames": n_frames, "size": size},
            "optim": {"epochs": 1, "batch_size": 4},
            "cv": {"k": 2, "val_fraction": 0.5},
            "runtime": {"progress": False, "device": "cpu"},
        }
    )


def _row(model, emd, loss="emd"):
    mean = dict.fromkeys(METRICS, 0.5) | {"emd": emd}
    return {
        "model": model,
        "loss": loss,
        "mean": mean,
        "std": dict.fromkeys(METRICS, 0.01),
    }


def test_best_row_filters_video_and_image_models():
    result = {
        "rows": [
            _row("resnet_image", 0.02),
            _row("x3d", 0.03),
            _row("timesformer", 0.025),
        ]
    }
    assert best_row(result)["model"] == "resnet_image"
    assert best_row(result, video_only=True)["model"] == "timesformer"
    assert best_row(result, image_only=True)["model"] == "resnet_image"


def test_markdown_has_every_row_the_baseline_and_bold_best():
    result = {
        "rows": [_row("timesformer", 0.0123), _row("x3d", 0.02, loss="mse")],
        "baseline": {
            "mean": dict.fromkeys(METRICS, 0.5) | {"emd": 0.07},
            "std": dict.fromkeys(METRICS, 0.0),
        },
        "skipped": ["slowfast/ce"],
        "references": [
            {
                "name": ORACLE_KNN_NAME,
                "mean": dict.fromkeys(METRICS, 0.9) | {"emd": 0.001},
                "std": dict.fromkeys(METRICS, 0.0),
            }
        ],
    }
    text = compare_markdown(result, context={"Machine": "test box"})
    # A reference row is listed but never takes the bold from the models.
    assert f"| {ORACLE_KNN_NAME} | - | 1.000e-3 ± 0.000e-3 |" in text
    assert "| timesformer | emd | **1.230e-2 ± 1.000e-2** |" in text
    assert f"| {BASELINE_NAME} | - | 7.000e-2" in text
    assert "Machine: test box" in text
    assert "slowfast/ce" in text
    header = next(line for line in text.splitlines() if line.startswith("| Model"))
    for title in ("EMD", "MSE", "JSD", "CE", "HI", "Macro HI", "Macro F1", "Mode acc."):
        assert f"| {title} |" in header


def test_model_kwargs_follow_the_data_geometry():
    cfg = config_from_dict({"data": {"n_frames": 4, "size": 32}})
    fitted = model_kwargs_fit({"num_frames": 8, "img_size": 224, "depth": 2}, cfg)
    assert fitted == {"num_frames": 4, "img_size": 32, "depth": 2}
    assert model_kwargs_fit({"tiny": True}, cfg) == {"tiny": True}


def test_compare_run_runs_every_model_and_loss_on_the_same_folds(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "model_create", lambda name, **kw: TinyVideoModel(**kw))
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root)
    base = _one_epoch_base(n_frames=2, size=16)
    result = compare_run(
        clips=clips,
        base=base,
        models=["a", "b"],
        losses=["emd", "jsd"],
        model_kwargs={},
        out_dir=tmp_path / "out",
    )
    assert [(r["model"], r["loss"]) for r in result["rows"]] == [
        ("a", "emd"),
        ("b", "emd"),
        ("a", "jsd"),
        ("b", "jsd"),
    ]
    folds = {
        (
            tmp_path / "out" / "seed_0" / f"{r['model']}__{r['loss']}" / "folds.json"
        ).read_text()
        for r in result["rows"]
    }
    assert len(folds) == 1
    assert result["baseline"]["mean"]["emd"] > 0
    skipped = compare_run(
        clips=clips,
        base=base,
        models=["a"],
        losses=["emd", "mse"],
        model_kwargs={},
        out_dir=tmp_path / "out2",
        budget_s=0.0,
    )
    assert skipped["rows"] == []
    assert skipped["skipped"] == ["a/emd (seed 0)", "a/mse (seed 0)"]


def test_knn_reference_chooses_k_on_validation_and_scores_the_test_fold():
    # Four blocks of 30 clips; the target depends on the block alone and blocks
    # lie far apart in the feature: k <= 10 takes neighbours from the clip's own
    # block only (10 training clips per block), k >= 20 from other blocks too.
    feature = np.repeat(np.arange(4.0), 30) + np.tile(np.linspace(0, 0.1, 30), 4)
    targets = np.zeros((120, 5))
    targets[np.arange(120), np.repeat(np.arange(4), 30)] = 1.0
    idx = np.arange(120)
    fold = Fold(
        index=0, train=idx[idx % 3 == 0], val=idx[idx % 3 == 1], test=idx[idx % 3 == 2]
    )
    (row,) = knn_reference(feature, targets, [fold])
    assert row["k"] == 5  # the smallest of the perfect choices (5 and 10)
    assert row["emd"] < 1e-12 and row["mode_accuracy"] == 1.0
    noise = np.random.default_rng(0).random(120)
    (shuffled,) = knn_reference(noise, targets, [fold])
    assert shuffled["emd"] > 0.05


def test_reference_rows_speed_only_and_the_synthetic_oracle(tmp_path):
    base = config_from_dict({"cv": {"k": 2, "val_fraction": 0.5}})
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=20, n_patients=10))
    # No latent quality or shape defect in this manifest: the speed row only.
    (speed,) = reference_rows(clips, folds_for(clips, base))
    assert speed["name"] == SPEED_KNN_NAME and len(speed["k"]) == 2
    synthetic = write_synthetic_manifest(
        tmp_path / "s", n_clips=24, n_patients=8, seed=1, n_frames=2, size=16
    )
    clips = clipset_load(synthetic, speed_features=["speed"])
    rows = {r["name"]: r for r in reference_rows(clips, folds_for(clips, base))}
    assert set(rows) == {SPEED_KNN_NAME, SHAPE_KNN_NAME, ORACLE_KNN_NAME}
    assert rows[ORACLE_KNN_NAME]["mean"]["emd"] < rows[SPEED_KNN_NAME]["mean"]["emd"]


def test_profiles_cover_every_model_and_reject_unknown_names():
    from modeling.models import list_models

    assert set(SMALL_KWARGS) == set(list_models())
    kwargs = profile_kwargs("small", ["timesformer"])
    assert kwargs["timesformer"]["patch_size"] == 8
    assert profile_kwargs("full", ["x3d"]) == {"x3d": {"weights": "random"}}
    with pytest.raises(ValueError, match="unknown profile"):
        profile_kwargs("huge", ["x3d"])


def test_compare_run_in_two_worker_processes_matches_the_run_order(tmp_path):
    from modeling.models import TINY_KWARGS

    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root)
    base = _one_epoch_base(n_frames=4, size=32)
    result = compare_run(
        clips=clips,
        base=base,
        models=["timesformer", "clinic"],
        losses=["emd", "mse"],
        model_kwargs=TINY_KWARGS,
        out_dir=tmp_path / "out",
        jobs=2,
    )
    assert [(r["model"], r["loss"]) for r in result["rows"]] == [
        ("timesformer", "emd"),
        ("clinic", "emd"),
        ("timesformer", "mse"),
        ("clinic", "mse"),
    ]
    assert all(np.isfinite(r["mean"]["emd"]) for r in result["rows"])
    assert result["baseline"]["mean"]["emd"] > 0
    assert [r["name"] for r in result["references"]] == [CHANCE_NAME, SPEED_KNN_NAME]
    for r in result["rows"]:
        assert (
            tmp_path / "out" / "seed_0" / f"{r['model']}__{r['loss']}" / "metrics.json"
        ).is_file()
