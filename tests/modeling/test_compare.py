from modeling import checkpoint as ckpt
from modeling.compare import (
    BASELINE_NAME,
    best_row,
    compare_markdown,
    compare_run,
    model_kwargs_fit,
)
from modeling.config import config_from_dict
from modeling.data import clipset_load
from tests.modeling.conftest import tiny_manifest
from tests.modeling.test_training import TinyVideoModel

METRICS = ("emd", "mse", "jsd", "ce", "hi", "macro_hi", "macro_f1", "mode_accuracy")


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
    }
    text = compare_markdown(result, context={"Machine": "test box"})
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
    base = config_from_dict(
        {
            "data": {"n_frames": 2, "size": 16},
            "optim": {"epochs": 1, "batch_size": 4},
            "cv": {"k": 2, "val_fraction": 0.5},
            "runtime": {"progress": False, "device": "cpu"},
        }
    )
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
        (tmp_path / "out" / f"{r['model']}__{r['loss']}" / "folds.json").read_text()
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
    assert skipped["skipped"] == ["a/emd", "a/mse"]
