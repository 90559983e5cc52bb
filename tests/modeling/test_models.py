"""Every registered model on tiny CPU configs: shapes, gradients, the
softmax-once contract, the speed input, and the registry."""

import pytest
import torch

from modeling.models import TINY_KWARGS, create_model, list_models

EXPECTED_MODELS = {
    "resnet_image",
    "r2plus1d",
    "x3d",
    "slowfast",
    "timesformer",
    "rostfine",
    "clinic",
}


def _inputs(seed: int = 0, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    video = torch.randn(batch, 3, 4, 32, 32, generator=generator)
    speed = torch.randn(batch, 1, generator=generator)
    return video, speed


def _tiny(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **{**TINY_KWARGS[name], **overrides})


def test_registry_holds_every_paper_model_and_the_clinic_model():
    assert set(list_models()) >= EXPECTED_MODELS
    assert set(TINY_KWARGS) == set(list_models())


def test_unknown_model_name_error_lists_registered_names():
    with pytest.raises(ValueError, match="Unknown model 'vit_huge'") as error:
        create_model("vit_huge")
    for name in EXPECTED_MODELS:
        assert name in str(error.value)


def test_builders_reject_positional_arguments():
    with pytest.raises(TypeError):
        create_model("timesformer", "random")


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_model_gives_finite_logits_and_trains(name):
    model = _tiny(name).train()
    video, speed = _inputs()
    logits = model(video, speed)
    assert logits.shape == (2, 5)
    assert torch.isfinite(logits).all()
    # a loss that depends on every output (a logsumexp would be constant for
    # RoSTFine, whose output is already a log-probability)
    (logits * torch.linspace(-1, 1, 5)).sum().backward()
    named = [(n, p.grad) for n, p in model.named_parameters() if p.requires_grad]
    unreached = [n for n, g in named if g is None]
    assert not unreached, unreached  # every parameter is in the graph
    assert sum(float(g.abs().sum()) for _, g in named) > 0
    features = model.forward_features(video)
    assert features.shape == (2, model.num_features * (3 if name == "rostfine" else 1))


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS - {"rostfine"}))
def test_model_returns_raw_logits_not_probabilities(name):
    model = _tiny(name).eval()
    video, speed = _inputs()
    with torch.no_grad():
        logits = model(video, speed)
        probs_if_softmaxed_inside = logits.exp().sum(dim=-1)
    # A softmax inside would make rows non-negative and sum to one, and a
    # log-softmax would make exp-rows sum to one.
    assert not torch.allclose(logits.sum(dim=-1), torch.ones(2), atol=1e-3)
    assert not torch.allclose(probs_if_softmaxed_inside, torch.ones(2), atol=1e-3)


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_speed_input_changes_the_prediction(name):
    model = _tiny(name).eval()
    video, speed = _inputs()
    with torch.no_grad():
        slow = model(video, speed)
        fast = model(video, speed + 3.0)
    assert not torch.allclose(slow, fast)


def test_model_without_speed_input_ignores_speed():
    model = _tiny("timesformer", n_speed=0).eval()
    video, _ = _inputs()
    with torch.no_grad():
        assert model(video, None).shape == (2, 5)


def test_missing_speed_gives_a_clear_error():
    model = _tiny("timesformer").eval()
    video, _ = _inputs()
    with pytest.raises(ValueError, match=r"pass speed of shape \(B, 1\)"):
        model(video)


def test_wrong_video_shape_gives_a_clear_error():
    model = _tiny("x3d").eval()
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.randn(2, 4, 32, 32), torch.zeros(2, 1))


def test_uint8_video_is_rejected_with_a_hint_to_normalise():
    model = _tiny("timesformer").eval()
    video = torch.zeros(2, 3, 4, 32, 32, dtype=torch.uint8)
    with pytest.raises(ValueError, match="normalise"):
        model(video, torch.zeros(2, 1))


def test_several_speed_features_are_accepted():
    model = _tiny("r2plus1d", n_speed=3).eval()
    video, _ = _inputs()
    with torch.no_grad():
        assert model(video, torch.randn(2, 3)).shape == (2, 5)


def test_image_model_averages_per_frame_logits():
    model = _tiny("resnet_image").eval()
    video, speed = _inputs()
    with torch.no_grad():
        clip_logits = model(video, speed)
        frame_logits = [model(video[:, :, t : t + 1], speed) for t in range(4)]
    torch.testing.assert_close(
        clip_logits, torch.stack(frame_logits).mean(dim=0), atol=1e-5, rtol=1e-4
    )


def test_timesformer_output_depends_on_frame_order():
    model = _tiny("timesformer").eval()
    video, speed = _inputs()
    with torch.no_grad():
        forward = model(video, speed)
        backward = model(video.flip(2), speed)
    assert not torch.allclose(forward, backward, atol=1e-5)


def test_timesformer_accepts_other_clip_lengths_and_sizes():
    model = _tiny("timesformer").eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 6, 48, 48), torch.zeros(1, 1))
    assert logits.shape == (1, 5)


def test_slowfast_rejects_frame_counts_not_divisible_by_alpha():
    model = _tiny("slowfast").eval()
    with pytest.raises(ValueError, match="divisible by alpha"):
        model(torch.randn(1, 3, 6, 32, 32), torch.zeros(1, 1))


def test_clinic_model_is_much_smaller_than_timesformer():
    clinic = create_model("clinic", weights="random")
    timesformer_b = create_model("timesformer", weights="random", depth=1)
    n_clinic = sum(p.numel() for p in clinic.parameters())
    n_one_block = sum(p.numel() for p in timesformer_b.parameters())
    assert n_clinic < n_one_block


def test_clinic_model_exports_to_onnx_and_matches_pytorch(tmp_path):
    import warnings

    import onnxruntime as ort

    model = _tiny("clinic").eval()
    video, speed = _inputs()
    path = tmp_path / "clinic.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (video, speed),
            str(path),
            input_names=["video", "speed"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"video": video.numpy(), "speed": speed.numpy()})[0]
    with torch.no_grad():
        want = model(video, speed).numpy()
    assert abs(got - want).max() < 1e-4


def test_narrow_cnns_for_the_small_profile_train_and_refuse_weight_files(tmp_path):
    video, speed = _inputs()
    r2 = _tiny("r2plus1d", widths=[8, 16, 24, 32])
    image = _tiny("resnet_image", width=8)
    assert r2.num_features == 32 and image.num_features == 64
    for model in (r2, image):
        model(video, speed).sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for p in r2.parameters()) < 0.05 * sum(
        p.numel() for p in _tiny("r2plus1d").parameters()
    )
    with pytest.raises(ValueError, match="four positive stage widths"):
        create_model("r2plus1d", weights="random", widths=[8, 16])
    weights = tmp_path / "r2.safetensors"
    weights.write_bytes(b"not read")
    with pytest.raises(ValueError, match="fit no weights file"):
        create_model("r2plus1d", weights=str(weights), widths=[8, 16, 24, 32])
    with pytest.raises(ValueError, match="tiny ResNet only"):
        create_model("resnet_image", weights="random", width=16)


def test_the_image_baseline_can_train_and_score_frame_by_frame():
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = create_model(
        "resnet_image",
        **{**TINY_KWARGS["resnet_image"], "per_frame": True, "score_frames": True},
    ).eval()
    video, speed = torch.randn(2, 3, 4, 32, 32), torch.randn(2, 1)
    with torch.no_grad():
        heads, aux = model.training_outputs(video, speed)
        out = model(video, speed)
        frames = model.frame_outputs(video, speed)
        # by hand: frame i alone through the backbone and the head
        frame = video[:, :, 2:3]
        alone = model.head(model.backbone(frame[:, :, 0]), speed)
    assert len(heads) == 4 and float(aux) == 0.0
    torch.testing.assert_close(heads[2], alone, rtol=1e-4, atol=1e-5)
    assert frames.shape == (2, 4, 5) and model.score_frames
    torch.testing.assert_close(frames[:, 2], alone, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="set per_frame=True"):
        create_model("resnet_image", **TINY_KWARGS["resnet_image"], score_frames=True)
    averaged = torch.stack([F.softmax(h, dim=-1) for h in heads]).mean(dim=0)
    torch.testing.assert_close(out.exp(), averaged)
    # the default keeps the mean-logit contract
    plain = create_model("resnet_image", **TINY_KWARGS["resnet_image"]).eval()
    with torch.no_grad():
        [single], _ = plain.training_outputs(video, speed)
        torch.testing.assert_close(single, plain(video, speed))
