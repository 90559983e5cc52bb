"""The comparison with power: seeds, negative controls, variants, paired
differences to the speed-only kNN, resuming finished runs, the paired tables."""

import dataclasses
import json

import numpy as np
import pytest
import yaml

from modeling import checkpoint as ckpt
from modeling import compare
from modeling.compare import best_row, compare_run, run_specs, seeded
from modeling.compare_report import compare_markdown, findings
from modeling.data import clipset_load
from modeling.metrics import emd_per_clip, nth_grade_balanced_accuracy
from modeling.paired import family_n_boot, seed_patient_draws
from modeling.references import CHANCE_NAME, SPEED_KNN_NAME, knn_predictions
from modeling.training import folds_for
from tests.modeling.conftest import tiny_manifest
from tests.modeling.test_compare import _one_epoch_base
from tests.modeling.test_training import TinyVideoModel


@pytest.fixture
def tiny_models(monkeypatch):
    built = []

    def create(name, **kw):
        built.append((name, dict(kw)))
        kw.pop("per_frame", None)
        kw.pop("score_frames", None)
        return TinyVideoModel(**kw)

    monkeypatch.setattr(ckpt, "model_create", create)
    return built


def _oof_pred(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return np.array([r["pred"] for r in rows])


def _oof_emd(path, targets):
    return emd_per_clip(_oof_pred(path), targets)


def test_run_specs_put_each_control_after_its_model_and_name_variants():
    specs = run_specs(
        ["clinic", "resnet_image:per_frame"],
        ["emd", "mse"],
        controls=["video_zeroed", "speed_zeroed"],
    )
    assert [(s.label, s.loss, s.control) for s in specs] == [
        ("clinic", "emd", "none"),
        ("clinic [video zeroed]", "emd", "video_zeroed"),
        ("clinic [speed zeroed]", "emd", "speed_zeroed"),
        ("resnet_image (per frame)", "emd", "none"),
        ("clinic", "mse", "none"),
        ("resnet_image (per frame)", "mse", "none"),
    ]
    assert specs[3].model == "resnet_image" and dict(specs[3].extra) == {
        "per_frame": True,
        "score_frames": True,
    }
    (mean,) = run_specs(["resnet_image:per_frame_mean"], ["emd"])
    assert mean.label == "resnet_image (per frame mean)"
    assert dict(mean.extra) == {"per_frame": True}
    assert len({s.dirname for s in specs if s.loss == "emd"}) == 4
    with pytest.raises(ValueError, match="unknown control"):
        run_specs(["clinic"], ["emd"], controls=["audio_zeroed"])
    with pytest.raises(ValueError, match="unknown variant"):
        run_specs(["clinic:wide"], ["emd"])
    with pytest.raises(ValueError, match="need a video model"):
        run_specs(["resnet_image"], ["emd"], controls=["video_zeroed"])


def _two_seed_args(clips, base, tmp_path, **extra) -> dict:
    """compare_run's arguments for model "a" with the EMD loss, seeds 0 and 1."""
    return dict(
        clips=clips,
        base=base,
        models=["a"],
        losses=["emd"],
        model_kwargs={},
        out_dir=tmp_path / "out",
        seeds=[0, 1],
        n_boot=300,
        **extra,
    )


def test_each_row_is_paired_clip_by_clip_with_the_speed_knn_of_its_seed(
    tmp_path, tiny_models
):
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=20, n_patients=10))
    base = _one_epoch_base(n_frames=2, size=16)
    run_args = _two_seed_args(
        clips, base, tmp_path, controls=["video_shuffled"], control_models=["a"]
    )
    result = compare_run(**run_args)
    targets = clips.targets.numpy().astype(np.float64)
    speed = clips.speed_raw.numpy()
    by_hand = {"a": [], "a [video shuffled]": []}
    strict_1st = {"a": [], "a [video shuffled]": []}
    for seed in (0, 1):
        folds = folds_for(clips, seeded(base, seed))
        _, knn = knn_predictions(speed, targets, folds)
        for label, dirname in (
            ("a", "a__emd"),
            ("a [video shuffled]", "a_video_shuffled__emd"),
        ):
            run_dir = tmp_path / "out" / f"seed_{seed}" / dirname
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
            assert cfg["cv"]["seed"] == seed and cfg["runtime"]["seed"] == seed
            assert cfg["data"]["control"] == (
                "none" if label == "a" else "video_shuffled"
            )
            model = _oof_emd(run_dir / "oof_predictions.jsonl", targets)
            by_hand[label].append(model - emd_per_clip(knn, targets))
            pred = _oof_pred(run_dir / "oof_predictions.jsonl")
            strict_1st[label] += [
                nth_grade_balanced_accuracy(
                    pred[f.test], targets[f.test], 1, strict=True
                )[0]
                for f in folds
            ]
    folds_0 = (tmp_path / "out" / "seed_0" / "a__emd" / "folds.json").read_text()
    folds_1 = (tmp_path / "out" / "seed_1" / "a__emd" / "folds.json").read_text()
    assert folds_0 != folds_1  # a seed sets the folds too
    rows = {r["model"]: r for r in result["rows"]}
    # The family: the two rows and the train-set mean against the speed-only kNN,
    # the control against its model (the kNN against itself is no interval).
    names = [r["name"] for r in result["references"]]
    assert result["family"]["n_intervals"] == 2 + 1 + (len(names) - 1) + 1
    each = 1 - 0.05 / result["family"]["n_intervals"]
    assert result["family"]["each"] == pytest.approx(each)
    for label, values in strict_1st.items():
        # Table 2's strict figure: the mean over both seeds' test folds
        grades = rows[label]["grades"]["mean"]
        assert grades["strict_balanced_accuracy_1st"] == pytest.approx(np.mean(values))
    for label, diffs in by_hand.items():
        delta = rows[label]["delta"]
        assert delta["delta"] == pytest.approx(np.mean(diffs))
        assert delta["per_seed"] == pytest.approx([d.mean() for d in diffs])
        assert delta["low"] <= delta["delta"] <= delta["high"]
        assert rows[label]["seeds"] == [0, 1]
        # The interval resamples the 10 patients (2 clips each), not 20 clips.
        assert (delta["n_patients"], delta["n_clips"]) == (10, 20)
        # Seeds and patients resampled, at the family's corrected level.
        draws = seed_patient_draws(
            np.stack(diffs), clips.patient_ids, n_boot=family_n_boot(each, 300)
        )
        tail = (1 - each) / 2 * 100
        low, high = np.percentile(draws, [tail, 100 - tail])
        assert (delta["low"], delta["high"]) == pytest.approx((low, high))
        assert delta["level"] == each and delta["n_seeds"] == 2
    (pair,) = result["pairs"]
    assert (pair["a"], pair["b"]) == ("a [video shuffled]", "a")
    assert pair["delta"]["n_patients"] == 10
    control_minus_model = np.mean(by_hand["a [video shuffled]"]) - np.mean(by_hand["a"])
    assert pair["delta"]["delta"] == pytest.approx(control_minus_model)
    speed_row = next(r for r in result["references"] if r["name"] == SPEED_KNN_NAME)
    assert speed_row["delta"]["delta"] == 0 == speed_row["delta"]["high"]
    # the controls are not models: never the best row
    assert best_row(result)["model"] == "a"
    text = compare_markdown(result, context={"Machine": "test box"})
    assert "## Paired against the speed-only kNN" in text
    assert "| a [video shuffled] | emd | 0, 1 |" in text
    assert "Δ EMD vs speed-only (1e-2) [95 % family-wise CI]" in text
    assert "The 5 intervals of this document are one family" in text
    # Tables 2 and 5, each with the chance row
    assert "## n-th most voted grade (Table 2 of Fujii et al.)" in text
    assert "## Top-k HI, Macro (Table 5 of Nakagawa et al.)" in text
    assert text.count(f"| {CHANCE_NAME} |") == 4  # Tables 1, 2, 5 and the paired
    assert "| a [video shuffled] | a | emd |" in text

    # Resuming reads every finished run back and trains nothing.
    def no_training(**kw):
        raise AssertionError("a finished run was trained again")

    monkey = pytest.MonkeyPatch()
    monkey.setattr(compare, "run_cv", no_training)
    try:
        again = compare_run(**run_args, budget_s=0.0, resume=True)
    finally:
        monkey.undo()
    assert again["skipped"] == []
    assert [r["delta"] for r in again["rows"]] == [r["delta"] for r in result["rows"]]


def test_the_per_frame_image_baseline_scores_every_frame_as_its_own_prediction(
    tmp_path,
):
    """resnet_image:per_frame is MERSV's protocol: each of a clip's 4 source
    frames is a prediction scored against the clip's target (the folds' test
    metrics, the paired per-clip EMD and predict all over frames);
    per_frame_mean is scored on the clip's averaged probabilities."""
    from modeling.models import TINY_KWARGS
    from modeling.predict import predict

    data = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6, n_frames=4)
    clips = clipset_load(data)
    result = compare_run(
        clips=clips,
        base=_one_epoch_base(n_frames=2, size=32),
        models=["resnet_image:per_frame", "resnet_image:per_frame_mean"],
        losses=["emd"],
        model_kwargs=TINY_KWARGS,
        out_dir=tmp_path / "out",
        n_boot=100,
    )
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == {"resnet_image (per frame)", "resnet_image (per frame mean)"}
    assert best_row(result, image_only=True) is not None
    assert best_row(result, video_only=True) is None
    targets = clips.targets.numpy().astype(np.float64)
    run = tmp_path / "out" / "seed_0" / "resnet_image_per_frame__emd"
    tested = json.loads((run / "fold_0" / "test_predictions.json").read_text())
    frames = np.array(tested["probs"])
    test_idx = [clips.clip_ids.index(c) for c in tested["clip_ids"]]
    assert frames.shape == (len(test_idx), 4, 5)  # every source frame, not 2
    # by hand: each frame's EMD against its clip's target, averaged over frames
    cdf_gap = frames.cumsum(2) - targets[test_idx][:, None, :].cumsum(2)
    by_hand = float((cdf_gap**2).mean(2).mean())
    fold_metrics = json.loads((run / "fold_0" / "metrics.json").read_text())
    assert fold_metrics["test"]["emd"] == pytest.approx(by_hand, abs=1e-6)
    assert fold_metrics["test"]["predictions_per_clip"] == 4
    oof = (run / "oof_predictions.jsonl").read_text().splitlines()
    oof = [json.loads(x) for x in oof]
    first = next(r for r in oof if r["clip_id"] == tested["clip_ids"][0])
    assert np.allclose(first["pred_frames"], frames[0], atol=1e-6)
    assert np.allclose(first["pred"], frames[0].mean(0), atol=1e-6)
    per_clip = compare.oof_emd(run, clips)
    assert per_clip[test_idx].mean() == pytest.approx(by_hand, abs=1e-6)
    served = predict(
        checkpoint=run / "fold_0" / "checkpoint",
        data=data,
        out=tmp_path / "served",
        clip_ids=tested["clip_ids"],
        device="cpu",
    )
    assert served["emd"] == pytest.approx(by_hand, abs=1e-5)
    meta = ckpt.checkpoint_meta(run / "fold_0" / "checkpoint")
    assert meta["model"]["kwargs"]["per_frame"] is True
    assert meta["model"]["kwargs"]["score_frames"] is True
    model, *_ = ckpt.checkpoint_load(run / "fold_0" / "checkpoint", device="cpu")
    assert model.per_frame and model.score_frames
    mean_run = tmp_path / "out" / "seed_0" / "resnet_image_per_frame_mean__emd"
    tested = json.loads((mean_run / "fold_0" / "test_predictions.json").read_text())
    assert np.array(tested["probs"]).shape == (len(test_idx), 5)
    meta = ckpt.checkpoint_meta(mean_run / "fold_0" / "checkpoint")
    assert "score_frames" not in meta["model"]["kwargs"]


def _delta(value, low, high, n_seeds=5):
    return {
        "delta": value,
        "low": low,
        "high": high,
        "per_seed": [value] * n_seeds,
        "per_fold": [[value]] * n_seeds,
        "n_seeds": n_seeds,
    }


def test_findings_state_only_the_intervals_that_exclude_zero():
    rows = [
        {"model": "clinic", "loss": "emd", "delta": _delta(-0.002, -0.003, -0.001)},
        {"model": "x3d", "loss": "emd", "delta": _delta(-0.001, -0.002, 0.0005)},
        {
            "model": "clinic [video zeroed]",
            "loss": "emd",
            "delta": _delta(0.01, 0.005, 0.02),
        },
        # one seed: its interval leaves out training variance, so no claim
        {"model": "timesformer", "loss": "emd", "delta": _delta(-0.1, -0.2, -0.05, 1)},
    ]
    pairs = [
        {
            "a": "clinic",
            "b": "x3d",
            "loss": "emd",
            "delta": _delta(-0.001, -0.004, 0.002),
        }
    ]
    claims = findings({"rows": rows, "pairs": pairs})
    assert claims == [
        "clinic (emd) is better than the speed-only kNN: Δ EMD -0.200 "
        "[-0.300, -0.100] e-2.",
        "clinic [video zeroed] (emd) is worse than the speed-only kNN: Δ EMD +1.000 "
        "[+0.500, +2.000] e-2.",
    ]


def test_a_control_never_takes_the_bold_from_the_models():
    metrics = ("emd", "mse", "jsd", "ce", "hi", "macro_hi", "macro_f1", "mode_accuracy")

    def row(name, emd, control="none"):
        mean = dict.fromkeys(metrics, 0.5) | {"emd": emd}
        std = dict.fromkeys(metrics, 0.0)
        return {
            "model": name,
            "loss": "emd",
            "control": control,
            "mean": mean,
            "std": std,
        }

    result = {
        "rows": [
            row("clinic", 0.02),
            row("clinic [video zeroed]", 0.01, "video_zeroed"),
        ],
        "baseline": {
            "mean": dict.fromkeys(metrics, 0.9),
            "std": dict.fromkeys(metrics, 0.0),
        },
        "references": [],
    }
    text = compare_markdown(result, context={})
    assert "| clinic | emd | **2.000e-2 ± 0.000e-2** |" in text
    assert "| clinic [video zeroed] | emd | 1.000e-2 ± 0.000e-2 |" in text


def test_a_second_rule_that_picks_the_same_checkpoints_is_no_new_interval(
    tmp_path, tiny_models
):
    # With an EMD loss, "checkpoint by the run's own loss" picks the same epochs
    # as "by validation EMD": its interval is the same one, shown again, not a
    # new member of the family (which would widen every interval for nothing).
    clips = clipset_load(tiny_manifest(tmp_path / "d", n_clips=20, n_patients=10))
    base = _one_epoch_base(n_frames=2, size=16)
    base = dataclasses.replace(
        base, cv=dataclasses.replace(base.cv, also_select_by="loss")
    )
    result = compare_run(**_two_seed_args(clips, base, tmp_path))
    (row,) = result["rows"]
    assert row["selection_alt"] == "loss"
    assert row["delta_alt"] is row["delta"]
    # the row and the references other than the speed-only kNN itself
    references = [r["name"] for r in result["references"]]
    assert result["family"]["n_intervals"] == 1 + 1 + (len(references) - 1)
