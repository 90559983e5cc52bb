"""Weights come from local files only; missing files say how to get them."""

import pytest
import torch
from safetensors.torch import save_file

from modeling.models import TINY_KWARGS, create_model
from modeling.models.timesformer import TimeSformer


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("SPERMGRADE_WEIGHTS_DIR", raising=False)
    return tmp_path


def _tiny_vit_state(*, embed_dim=32, depth=2, grid=2, seed=0):
    """A random state dict in timm ViT key format (what timm saves)."""
    generator = torch.Generator().manual_seed(seed)
    d = embed_dim

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    state = {
        "cls_token": rand(1, 1, d),
        "pos_embed": rand(1, grid * grid + 1, d),
        "patch_embed.proj.weight": rand(d, 3, 16, 16),
        "patch_embed.proj.bias": rand(d),
        "norm.weight": rand(d),
        "norm.bias": rand(d),
        "head.weight": rand(1000, d),
        "head.bias": rand(1000),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        state |= {
            p + "norm1.weight": rand(d),
            p + "norm1.bias": rand(d),
            p + "attn.qkv.weight": rand(3 * d, d),
            p + "attn.qkv.bias": rand(3 * d),
            p + "attn.proj.weight": rand(d, d),
            p + "attn.proj.bias": rand(d),
            p + "norm2.weight": rand(d),
            p + "norm2.bias": rand(d),
            p + "mlp.fc1.weight": rand(4 * d, d),
            p + "mlp.fc1.bias": rand(4 * d),
            p + "mlp.fc2.weight": rand(d, 4 * d),
            p + "mlp.fc2.bias": rand(d),
        }
    return state


def _assert_loaded_except_head(source: dict, loaded: dict) -> None:
    """Every tensor of ``source`` but its head (always new) is in ``loaded``."""
    for key, value in source.items():
        if not key.startswith("head."):
            torch.testing.assert_close(loaded[key], value)


def _tiny_timesformer(weights):
    return create_model(
        "timesformer", **{**TINY_KWARGS["timesformer"], "weights": weights}
    )


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("timesformer", "model.safetensors"),
        ("rostfine", "model.safetensors"),
        ("resnet_image", "resnet50-11ad3fa6.pth"),
        ("r2plus1d", "r2plus1d_18-91a641e6.pth"),
        ("x3d", "X3D_M.pyth"),
        ("slowfast", "SLOWFAST_8x8_R50.pyth"),
    ],
)
def test_missing_pretrained_weights_error_names_the_file_and_how_to_get_it(
    empty_caches, name, filename
):
    with pytest.raises(FileNotFoundError) as error:
        create_model(name)  # pretrained is the default
    message = str(error.value)
    assert filename in message
    assert str(empty_caches) in message  # where it looked
    assert "machine with internet" in message
    assert "weights='random'" in message


def test_timesformer_error_gives_the_timm_hub_id(empty_caches):
    with pytest.raises(FileNotFoundError, match="vit_base_patch16_224.augreg2"):
        create_model("timesformer", weights="pretrained")


def test_missing_weights_path_is_reported(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        _tiny_timesformer(missing)


def test_vit_checkpoint_initialises_timesformer_as_the_original(tmp_path):
    vit = _tiny_vit_state()
    path = tmp_path / "vit.safetensors"
    save_file(vit, str(path))
    model = _tiny_timesformer(path)
    state = model.state_dict()
    for i in range(2):
        p = f"blocks.{i}."
        for leaf in ("qkv.weight", "qkv.bias", "proj.weight", "proj.bias"):
            torch.testing.assert_close(
                state[p + "attn." + leaf], vit[p + "attn." + leaf]
            )
            torch.testing.assert_close(
                state[p + "temporal_attn." + leaf], vit[p + "attn." + leaf]
            )
        torch.testing.assert_close(
            state[p + "temporal_norm1.weight"], vit[p + "norm1.weight"]
        )
    torch.testing.assert_close(state["pos_embed"], vit["pos_embed"])
    torch.testing.assert_close(
        state["patch_embed.proj.weight"], vit["patch_embed.proj.weight"]
    )
    assert torch.count_nonzero(state["time_embed"]) == 0
    assert torch.count_nonzero(state["blocks.1.temporal_fc.weight"]) == 0
    assert state["head.fc.weight"].shape[0] == 5  # our head, not ImageNet's


def test_vit_checkpoint_in_the_torch_hub_cache_is_found_by_pretrained(
    empty_caches, monkeypatch
):
    folder = empty_caches / "weights"
    folder.mkdir()
    save_file(_tiny_vit_state(), str(folder / "model.safetensors"))
    monkeypatch.setenv("SPERMGRADE_WEIGHTS_DIR", str(folder))
    model = _tiny_timesformer("pretrained")
    assert torch.count_nonzero(model.state_dict()["time_embed"]) == 0


def test_vit_checkpoint_of_another_grid_is_resampled(tmp_path):
    path = tmp_path / "vit224.pth"
    torch.save({"state_dict": _tiny_vit_state(grid=3)}, path)
    model = _tiny_timesformer(path)
    assert model.pos_embed.shape == (1, 5, 32)


def test_timesformer_checkpoint_round_trips(tmp_path):
    torch.manual_seed(1)
    source = _tiny_timesformer("random").eval()
    path = tmp_path / "timesformer.pyth"
    state = {"model." + key: value for key, value in source.state_dict().items()}
    torch.save({"model_state": state}, path)
    loaded = _tiny_timesformer(path).eval()
    _assert_loaded_except_head(source.state_dict(), loaded.state_dict())


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(5, 5)}, path)
    with pytest.raises(ValueError, match="not a ViT/TimeSformer checkpoint"):
        _tiny_timesformer(path)


def test_cnn_checkpoint_loads_matching_backbone_tensors(tmp_path):
    torch.manual_seed(2)
    source = create_model("r2plus1d", **TINY_KWARGS["r2plus1d"])
    path = tmp_path / "r2plus1d.pth"
    torch.save(source.backbone.state_dict(), path)
    loaded = create_model("r2plus1d", tiny=True, weights=path)
    torch.testing.assert_close(
        loaded.backbone.stem[0].weight, source.backbone.stem[0].weight
    )


def test_random_weights_are_an_explicit_choice():
    model = _tiny_timesformer("random")
    assert isinstance(model, TimeSformer)


def _tiny_rostfine(weights):
    kwargs = {**TINY_KWARGS["rostfine"], "weights": weights}
    return create_model("rostfine", **kwargs)


def test_rostfine_loads_a_vit_checkpoint_and_initialises_its_own_branches(tmp_path):
    vit = _tiny_vit_state(seed=3)
    path = tmp_path / "vit.safetensors"
    save_file(vit, str(path))
    torch.manual_seed(0)
    fresh = _tiny_rostfine("random").state_dict()
    torch.manual_seed(0)
    model = _tiny_rostfine(path)
    state = model.state_dict()
    # the backbone is the ViT's ...
    torch.testing.assert_close(
        state["blocks.1.attn.qkv.weight"], vit["blocks.1.attn.qkv.weight"]
    )
    torch.testing.assert_close(
        state["blocks.0.temporal_attn.proj.weight"], vit["blocks.0.attn.proj.weight"]
    )
    torch.testing.assert_close(state["cls_token"], vit["cls_token"])
    # ... and every branch parameter keeps its own initialisation
    branch = [k for k in state if k.startswith(type(model).own_modules)]
    assert len(branch) > 10
    for key in branch:
        torch.testing.assert_close(state[key], fresh[key])


def test_rostfine_loads_a_timesformer_checkpoint_and_its_own(tmp_path):
    torch.manual_seed(2)
    source = _tiny_timesformer("random").eval()
    path = tmp_path / "timesformer.pth"
    torch.save(source.state_dict(), path)
    _assert_loaded_except_head(source.state_dict(), _tiny_rostfine(path).state_dict())
    # a RoSTFine checkpoint restores the branches too
    torch.manual_seed(5)
    trained = _tiny_rostfine("random")
    path = tmp_path / "rostfine.pth"
    torch.save(trained.state_dict(), path)
    _assert_loaded_except_head(trained.state_dict(), _tiny_rostfine(path).state_dict())


def test_an_unexpected_tensor_is_an_error_naming_it(tmp_path):
    vit = _tiny_vit_state()
    vit["blocks.0.adapter.weight"] = torch.zeros(4, 4)
    path = tmp_path / "vit.safetensors"
    save_file(vit, str(path))
    for build in (_tiny_timesformer, _tiny_rostfine):
        with pytest.raises(ValueError, match="blocks.0.adapter.weight"):
            build(path)
