"""Input normalisation per model, from the origin of its standard weights,
stored in the checkpoint and the ONNX report, and applied when predicting."""

import json
import warnings

import numpy as np
import pytest
import torch

from modeling import checkpoint as ckpt
from modeling.augment import batch_prepare
from modeling.config import config_from_dict
from modeling.models.weights import model_normalization
from tests.modeling.conftest import tiny_checkpoint


@pytest.mark.parametrize(
    "name, expected",
    [
        ("timesformer", "half"),  # timm augreg ViT-B/16: mean = std = 0.5
        ("rostfine", "half"),
        ("resnet_image", "imagenet"),
        ("r2plus1d", "kinetics_torchvision"),
        ("x3d", "kinetics"),  # pytorchvideo: 0.45 / 0.225
        ("slowfast", "kinetics"),
        ("clinic", "kinetics"),  # an X3D
    ],
)
def test_each_model_takes_the_statistics_of_its_weights(name, expected):
    assert model_normalization(name) == expected
    assert model_normalization(name, "imagenet") == "imagenet"  # explicit wins


def test_batch_prepare_applies_the_named_statistics_by_hand():
    frames = torch.zeros(1, 2, 8, 8, 3, dtype=torch.uint8)
    frames[..., 0] = 255  # red channel white, the others black
    half = batch_prepare(frames, size=8, normalization="half")
    assert half[0, 0].unique().tolist() == [1.0]  # (1 - 0.5) / 0.5
    assert half[0, 1].unique().tolist() == [-1.0]  # (0 - 0.5) / 0.5
    kin = batch_prepare(frames, size=8, normalization="kinetics")
    assert kin[0, 0, 0, 0, 0].item() == pytest.approx((1 - 0.45) / 0.225)
    assert kin[0, 2, 0, 0, 0].item() == pytest.approx(-0.45 / 0.225)
    imagenet = batch_prepare(frames, size=8)
    assert imagenet[0, 1, 0, 0, 0].item() == pytest.approx(-0.456 / 0.224)
    with pytest.raises(ValueError, match="unknown normalization"):
        batch_prepare(frames, size=8, normalization="nope")


def _save(tmp_path, tiny_data):
    return tiny_checkpoint(
        tmp_path / "ckpt", tiny_data, config={"data": {"n_frames": 4, "size": 32}}
    )


def test_the_checkpoint_records_and_restores_the_normalisation(tmp_path, tiny_data):
    out = _save(tmp_path, tiny_data)
    meta = ckpt.checkpoint_meta(out)
    assert meta["input"]["normalization"] == "kinetics"
    assert meta["input"]["mean"] == [0.45] * 3 and meta["input"]["std"] == [0.225] * 3
    _, _, cfg, _ = ckpt.checkpoint_load(out)
    assert cfg.data.normalization == "kinetics"
    # A checkpoint from before (no name recorded) was trained on ImageNet stats.
    path = out / ckpt.META_FILE
    old = json.loads(path.read_text())
    del old["input"]["normalization"]
    path.write_text(json.dumps(old))
    _, _, cfg, _ = ckpt.checkpoint_load(out)
    assert cfg.data.normalization == "imagenet"


def test_predict_uses_the_checkpoints_normalisation(tmp_path, tiny_data):
    from modeling.predict import predict

    out = _save(tmp_path, tiny_data)
    first = predict(checkpoint=out, data=tiny_data, out=tmp_path / "p1")
    rows = (tmp_path / "p1" / "predictions.jsonl").read_text()
    path = out / ckpt.META_FILE
    meta = json.loads(path.read_text())
    meta["input"]["normalization"] = "half"
    path.write_text(json.dumps(meta))
    predict(checkpoint=out, data=tiny_data, out=tmp_path / "p2")
    other = (tmp_path / "p2" / "predictions.jsonl").read_text()
    assert rows != other  # the same weights see other inputs
    assert np.isfinite(first.get("emd", 0.0))


def test_the_onnx_report_carries_the_normalisation(tmp_path, tiny_data):
    from modeling.onnx_export import onnx_export

    out = _save(tmp_path, tiny_data)
    report = onnx_export(out, tmp_path / "model.onnx", check=False)
    assert report["input"]["normalization"] == "kinetics"
    assert report["input"]["mean"] == [0.45] * 3
    written = json.loads((tmp_path / "model.json").read_text())
    assert written["input"]["std"] == [0.225] * 3
    import onnx

    props = {
        p.key: json.loads(p.value)
        for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props
    }
    assert props["input_normalization"] == "kinetics"
    assert props["input_mean"] == [0.45] * 3 and props["input_std"] == [0.225] * 3


def test_the_weights_file_says_which_statistics_its_model_takes(tmp_path):
    from safetensors.torch import save_file

    kinetics = tmp_path / "TimeSformer_divST_8x32_224_K400.pyth"
    kinetics.write_bytes(b"a facebookresearch/TimeSformer release")
    assert model_normalization("timesformer", weights=kinetics) == "kinetics"
    assert model_normalization("timesformer", "half", weights=kinetics) == "half"
    recorded = tmp_path / "vit.safetensors"
    save_file(
        {"w": torch.zeros(1)}, str(recorded), metadata={"normalization": "imagenet"}
    )
    assert model_normalization("timesformer", weights=recorded) == "imagenet"
    hub = tmp_path / "models--timm--vit_base_patch16_224.augreg2_in21k_ft_in1k"
    timm_file = hub / "snapshots" / "abc" / "model.safetensors"
    timm_file.parent.mkdir(parents=True)
    save_file({"w": torch.zeros(1)}, str(timm_file))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model_normalization("timesformer", weights=timm_file) == "half"
        assert model_normalization("timesformer", weights="random") == "half"
        assert model_normalization("x3d", weights="pretrained") == "kinetics"
    # Nothing records this file's origin: the model's standard one, said aloud.
    unknown = tmp_path / "mine.pth"
    unknown.write_bytes(b"?")
    with pytest.warns(UserWarning, match="Set data.normalization"):
        assert model_normalization("timesformer", weights=unknown) == "half"


def test_a_timesformer_from_a_kinetics_checkpoint_sees_kinetics_inputs(
    tmp_path, tiny_data
):
    """The issue's case: TimeSformer weights from a Kinetics checkpoint take the
    original code's 0.45 / 0.225, not the ViT's 0.5 / 0.5, in training, in the
    checkpoint (and its weights file) and in the ONNX model's description."""
    from modeling.data import SpeedScaler, clipset_load
    from modeling.models import TINY_KWARGS
    from modeling.models.weights import weights_normalization
    from modeling.onnx_export import onnx_export
    from modeling.training import DeviceData, batch_make

    tiny = {**TINY_KWARGS["timesformer"], "n_speed": 1}
    source = ckpt.model_create("timesformer", **tiny)
    file = tmp_path / "TimeSformer_divST_8x32_224_K400.pyth"
    state = {f"model.{k}": v for k, v in source.state_dict().items()}
    torch.save({"model_state": state}, file)
    kwargs = {**TINY_KWARGS["timesformer"], "weights": str(file)}
    model = ckpt.model_create("timesformer", **kwargs, n_speed=1)
    torch.testing.assert_close(model.pos_embed, source.pos_embed)  # loaded
    cfg = config_from_dict(
        {
            "model": {"name": "timesformer", "kwargs": kwargs},
            "data": {"n_frames": 4, "size": 32},
        }
    )
    black = DeviceData(
        videos=torch.zeros(1, 4, 32, 32, 3, dtype=torch.uint8),
        targets=torch.full((1, 5), 0.2),
        speed=torch.zeros(1, 1),
        modes=np.zeros(1, dtype=int),
    )
    video, _, _ = batch_make(
        black, np.array([0]), cfg, torch.device("cpu"), train=False
    )
    assert video.unique().tolist() == [pytest.approx(-2.0)]  # (0 - 0.45) / 0.225
    clips = clipset_load(tiny_data)
    out = ckpt.checkpoint_save(
        tmp_path / "ckpt",
        model=model,
        cfg=cfg,
        n_speed=1,
        scaler=SpeedScaler.fit(clips.speed_raw, clips.speed_names),
        fold=0,
        epoch=1,
        metrics={},
    )
    meta = ckpt.checkpoint_meta(out)
    assert meta["input"]["normalization"] == "kinetics"
    assert meta["input"]["mean"] == [0.45] * 3 and meta["input"]["std"] == [0.225] * 3
    assert file.name in meta["input"]["normalization_from"]
    # Training from this checkpoint's weights file keeps its statistics.
    name, where = weights_normalization(str(out / ckpt.WEIGHTS_FILE))
    assert name == "kinetics" and "safetensors header" in where
    import onnx

    onnx_export(out, tmp_path / "model.onnx", check=False)
    described = onnx.load(str(tmp_path / "model.onnx")).doc_string
    assert "kinetics statistics, mean [0.45, 0.45, 0.45]" in described
    assert "ImageNet" not in described
