import json
import subprocess
import sys
from pathlib import Path

import pytest

from modeling.cli import main, parser_build

TINY_TIMESFORMER = (
    "{weights: random, embed_dim: 16, depth: 1, num_heads: 2, img_size: 32, "
    "patch_size: 16, num_frames: 4}"
)


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_help_lists_every_command():
    text = parser_build().format_help()
    for command in ("train", "evaluate", "predict", "export-onnx", "make-synthetic"):
        assert command in text


def test_the_command_prints_no_warning_of_the_libraries_it_imports(tmp_path):
    # Every warning shown (-W default), as a new user's terminal would; the model
    # modules are imported too (pytorchvideo's fvcore warned on every call).
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "import modeling.models, modeling.training; from modeling import cli; "
            "cli.main(['make-synthetic', '--help'])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_train_evaluate_predict_export_end_to_end(tmp_path, capsys):
    data, run = tmp_path / "syn", tmp_path / "run"
    args = ["--n-clips", "8", "--n-patients", "4", "--n-frames", "4", "--size", "32"]
    assert main(["make-synthetic", "--out", str(data), *args]) == 0
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "data: {n_frames: 4, size: 32}\n"
        f"model: {{name: timesformer, kwargs: {TINY_TIMESFORMER}}}\n"
        "optim: {epochs: 1, batch_size: 2}\n"
        "cv: {k: 2, val_fraction: 0.5}\n"
        "runtime: {progress: false}\n"
    )
    train = ["train", "--config", str(cfg), "--data", str(data), "--out", str(run)]
    assert main([*train, "--set", "optim.lr=0.01"]) == 0
    summary = _last_json(capsys)
    assert 0 <= summary["mean"]["emd"] <= 1
    saved = (run / "config.yaml").read_text()
    assert "lr: 0.01" in saved and "timesformer" in saved

    ckpt = run / "fold_0" / "checkpoint"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    assert "macro_hi" in _last_json(capsys)
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(ckpt),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "pred"),
            ]
        )
        == 0
    )
    lines = (tmp_path / "pred" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8
    assert (
        main(
            [
                "export-onnx",
                "--checkpoint",
                str(ckpt),
                "--out",
                str(tmp_path / "m.onnx"),
            ]
        )
        == 0
    )
    report = _last_json(capsys)
    assert report["max_abs_diff"] < 1e-4
    assert (tmp_path / "m.json").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "optim.lrr=1"], "unknown key"),
        (["--set", "model.name=nope"], "Unknown model 'nope'"),
    ],
)
def test_bad_config_exits_2_with_a_message(tmp_path, capsys, argv, message):
    from tests.modeling.conftest import tiny_manifest

    data = tiny_manifest(tmp_path / "d", n_clips=6, n_patients=6)
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_data_exits_2_with_a_message(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no manifest" in capsys.readouterr().err
    code = main(
        [
            "predict",
            "--checkpoint",
            str(tmp_path),
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "checkpoint.json is missing" in capsys.readouterr().err


def test_profile_gives_the_platforms_clinic_settings_and_excludes_config(
    tmp_path, capsys
):
    from modeling.config import config_load
    from modeling.profiles import profile_config

    cfg = config_load(base=profile_config("clinic"), overrides=["optim.epochs=3"])
    assert (cfg.model.name, cfg.data.size, cfg.data.n_frames) == ("clinic", 64, 8)
    assert (cfg.optim.optimizer, cfg.optim.epochs, cfg.cv.k) == ("adamw", 3, 3)
    assert profile_config("clinic")["optim"]["epochs"] == 12  # a copy was changed
    with pytest.raises(SystemExit):
        parser_build().parse_args(
            ["train", "--profile", "clinic", "--config", "c.yaml", "--data", "d"]
            + ["--out", "o"]
        )
    assert "not allowed with argument" in capsys.readouterr().err


def test_held_out_needs_a_folds_checkpoint(tmp_path, capsys):
    data = tmp_path / "syn"
    args = ["--n-clips", "4", "--n-patients", "2", "--n-frames", "4", "--size", "32"]
    assert main(["make-synthetic", "--out", str(data), *args]) == 0
    final = tmp_path / "run" / "final" / "checkpoint"
    final.mkdir(parents=True)
    code = main(
        ["evaluate", "--checkpoint", str(final), "--data", str(data), "--held-out"]
        + ["--out", str(tmp_path / "e")]
    )
    assert code == 2
    assert "--held-out needs a fold's checkpoint" in capsys.readouterr().err
