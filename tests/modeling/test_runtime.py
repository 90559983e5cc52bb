"""The trainer's throughput options (issue 15, part 1), checked on the CPU: the
frame-major temporal attention, pure bf16 training and torch.compile's mode."""

import math

import pytest
import torch
from timm.layers.attention import Attention
from torch import nn

from modeling import runtime, training
from modeling.config import ConfigError, config_from_dict
from modeling.data import SpeedScaler, clipset_load
from modeling.models import TINY_KWARGS, create_model
from modeling.models.timesformer import temporal_attention_frame_major
from tests.modeling.conftest import fold0_served_and_oof, tiny_manifest


def _per_position_reference(attn: Attention, x: torch.Tensor, t: int) -> torch.Tensor:
    """Attention across frames written out by hand, one patch position at a time."""
    b, length, d = x.shape
    n = length // t
    heads, c = attn.num_heads, d // attn.num_heads
    w_qkv, b_qkv = attn.qkv.weight, attn.qkv.bias
    out = torch.zeros_like(x)
    for pos in range(n):
        tokens = x[:, pos::n]  # (B, T, D): frame 0..T-1 of this position
        qkv = tokens @ w_qkv.T + b_qkv
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
        mixed = []
        for h in range(heads):
            qh, kh, vh = (m[..., h * c : (h + 1) * c] for m in (q, k, v))
            weights = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(c), dim=-1)
            mixed.append(weights @ vh)
        out[:, pos::n] = torch.cat(mixed, dim=-1) @ attn.proj.weight.T + attn.proj.bias
    return out


def test_frame_major_temporal_attention_equals_attention_per_patch_position():
    torch.manual_seed(0)
    attn = Attention(8, num_heads=2, qkv_bias=True).eval()
    t, n = 3, 5
    x = torch.randn(2, t * n, 8)
    got = temporal_attention_frame_major(attn, x, t)
    want = _per_position_reference(attn, x, t)
    assert torch.allclose(got, want, atol=1e-5)
    # ...and what the transposing path computes: tokens to (n, t), attend, back.
    moved = x.view(2, t, n, 8).transpose(1, 2).reshape(2 * n, t, 8)
    back = attn(moved).view(2, n, t, 8).transpose(1, 2).reshape(2, t * n, 8)
    assert torch.allclose(got, back, atol=1e-5)


@pytest.mark.parametrize("name", ["timesformer", "rostfine"])
def test_frame_major_layout_gives_the_same_outputs_and_gradients(name):
    torch.manual_seed(0)
    base = create_model(name, **TINY_KWARGS[name])
    other = create_model(name, **TINY_KWARGS[name], temporal_layout="frame_major")
    # Same weights: non-zero temporal projections so the temporal path counts.
    with torch.no_grad():
        for block in base.blocks:
            block.temporal_fc.weight.normal_(std=0.2)
    other.load_state_dict(base.state_dict())
    video = torch.randn(2, 3, 4, 32, 32)
    speed = torch.randn(2, 1)
    outputs = []
    for model in (base, other):
        model.eval()
        logits = model(video, speed)
        logits.square().sum().backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        outputs.append((logits.detach(), grads))
    (la, ga), (lb, gb) = outputs
    assert torch.allclose(la, lb, atol=1e-5)
    assert ga.keys() == gb.keys()
    temporal = [k for k in ga if "temporal_attn.qkv" in k]
    assert temporal and all(ga[k].abs().sum() > 0 for k in temporal)
    for key in ga:
        assert torch.allclose(ga[key], gb[key], atol=1e-5), key


def test_an_unknown_layout_or_a_clash_with_fused_attention_is_refused():
    kwargs = TINY_KWARGS["timesformer"]
    with pytest.raises(ValueError, match="temporal_layout 'diagonal'"):
        create_model("timesformer", **kwargs, temporal_layout="diagonal")
    with pytest.raises(ValueError, match="fused_temporal_attention"):
        create_model(
            "timesformer",
            **kwargs,
            temporal_layout="frame_major",
            fused_temporal_attention=True,
        )


def _cfg(**runtime_values):
    return config_from_dict(
        {
            "data": {"n_frames": 4, "size": 32, "speed_features": ["speed"]},
            "model": {"name": "timesformer", "kwargs": TINY_KWARGS["timesformer"]},
            "optim": {"epochs": 2, "batch_size": 4, "lr": 0.05},
            "cv": {"k": 2, "val_fraction": 0.5},
            "augment": {"enabled": False},
            "runtime": {"progress": False, "device": "cpu", **runtime_values},
        }
    )


def test_pure_bf16_trains_bf16_weights_on_bf16_inputs_and_stays_near_float32(
    tmp_path,
):
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    clips = clipset_load(root)
    cfg = _cfg(amp="bf16-pure")
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = training.model_for(cfg, 1, cpu)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    data = training.device_data(
        clips, SpeedScaler.fit(clips.speed_raw, clips.speed_names), cfg, cpu
    )
    video, speed, target = training.batch_make(
        data, torch.arange(4).numpy(), cfg, cpu, train=False
    )
    assert video.dtype == speed.dtype == torch.bfloat16
    assert target.dtype == torch.float32
    # The same weights in float32 on float32 inputs: probabilities within bf16's
    # rounding (8 mantissa bits) of the bf16 model's.
    reference = training.model_for(_cfg(), 1, cpu)
    reference.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    with torch.no_grad():
        p16 = torch.softmax(model.eval()(video, speed).float(), -1)
        p32 = torch.softmax(reference.eval()(video.float(), speed.float()), -1)
    assert (p16 - p32).abs().max() < 0.02
    assert not torch.equal(p16, p32)  # it really ran in bf16

    training.run_cv(cfg=cfg, clips=clips, out_dir=tmp_path / "out")
    # A bf16 checkpoint serves in float32: predictions within bf16 tolerance.
    _, served, fold0 = fold0_served_and_oof(tmp_path / "out", root, tmp_path / "pred")
    assert fold0 and all(math.isfinite(v) for r in fold0 for v in r["pred"])
    for row in fold0:
        assert served[row["clip_id"]] == pytest.approx(row["pred"], abs=0.02)


class _Multi(nn.Module):
    def forward(self, video, speed):
        return video

    def training_outputs(self, video, speed):
        return [video], None


@pytest.mark.parametrize(
    ("mode", "passed"),
    [
        ("default", None),
        ("reduce-overhead", "reduce-overhead"),
        ("max-autotune", "max-autotune"),
    ],
)
def test_compile_mode_reaches_torch_compile_for_forward_and_training_outputs(
    monkeypatch, mode, passed
):
    calls = []

    def fake_compile(target, mode=None):
        calls.append((getattr(target, "__name__", type(target).__name__), mode))
        return target

    monkeypatch.setattr(runtime.torch, "compile", fake_compile)
    cfg = _cfg(compile=True, compile_mode=mode)
    model = _Multi()
    runtime.model_compile(model, cfg)
    assert calls == [("_Multi", passed), ("training_outputs", passed)]


def test_the_trainer_compiles_in_the_configured_mode(tmp_path, monkeypatch):
    modes = []

    def fake_compile(target, mode=None):
        modes.append(mode)
        return target

    monkeypatch.setattr(runtime.torch, "compile", fake_compile)
    root = tiny_manifest(tmp_path / "d", n_clips=12, n_patients=6)
    cfg = _cfg(compile=True, compile_mode="reduce-overhead")
    training.run_cv(cfg=cfg, clips=clipset_load(root), out_dir=tmp_path / "out")
    assert modes == ["reduce-overhead", "reduce-overhead"]  # once per fold


def test_unknown_precision_or_compile_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="runtime.compile_mode"):
        _cfg(compile_mode="fastest")
    with pytest.raises(ConfigError, match="runtime.amp"):
        _cfg(amp="fp8")
