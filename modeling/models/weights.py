"""Local checkpoint loading. Nothing here ever downloads a file.

``weights`` arguments of the builders accept:

- ``"random"`` (or ``None``): random initialisation, an explicit choice;
- ``"pretrained"``: the model's standard pretrained file, looked up in
  ``$SPERMGRADE_WEIGHTS_DIR``, the torch hub cache (``$TORCH_HOME/hub/checkpoints``)
  and the Hugging Face hub cache; missing -> FileNotFoundError saying how to get it;
- a path to a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.pyth`` / ``.bin`` file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

RANDOM = "random"
PRETRAINED = "pretrained"

WeightsArg = str | os.PathLike | None


@dataclass(frozen=True)
class PretrainedFile:
    """Where a model's standard pretrained checkpoint comes from."""

    filename: str
    description: str
    fetch_command: str
    hf_repo: str | None = None
    normalization: str = "imagenet"  # the input statistics the file was trained on


PRETRAINED_FILES: dict[str, PretrainedFile] = {
    "resnet_image": PretrainedFile(
        filename="resnet50-11ad3fa6.pth",
        description="torchvision ResNet-50 ImageNet-1k (IMAGENET1K_V2)",
        fetch_command=(
            'python -c "import torchvision; torchvision.models.resnet50('
            "weights='IMAGENET1K_V2')\""
        ),
    ),
    "r2plus1d": PretrainedFile(
        filename="r2plus1d_18-91a641e6.pth",
        description="torchvision R(2+1)D-18 Kinetics-400",
        normalization="kinetics_torchvision",
        fetch_command=(
            'python -c "import torchvision; torchvision.models.video.r2plus1d_18('
            "weights='KINETICS400_V1')\""
        ),
    ),
    "x3d": PretrainedFile(
        filename="X3D_M.pyth",
        description="pytorchvideo X3D-M Kinetics-400",
        normalization="kinetics",
        fetch_command=(
            "curl -LO https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/"
            "kinetics/X3D_M.pyth"
        ),
    ),
    "slowfast": PretrainedFile(
        filename="SLOWFAST_8x8_R50.pyth",
        description="pytorchvideo SlowFast R50 8x8 Kinetics-400",
        normalization="kinetics",
        fetch_command=(
            "curl -LO https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/"
            "kinetics/SLOWFAST_8x8_R50.pyth"
        ),
    ),
    "timesformer": PretrainedFile(
        filename="model.safetensors",
        description=(
            "timm ViT-B/16 ImageNet (timm/vit_base_patch16_224.augreg2_in21k_ft_in1k)"
        ),
        fetch_command=(
            "hf download timm/vit_base_patch16_224.augreg2_in21k_ft_in1k "
            "model.safetensors"
        ),
        hf_repo="timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
        normalization="half",
    ),
}
PRETRAINED_FILES["rostfine"] = PRETRAINED_FILES["timesformer"]
# Models without a standard file of their own, and the origin their inputs follow:
# the clinic network is an X3D (pytorchvideo's Kinetics statistics).
_NORMALIZATION_OF = {"clinic": "kinetics"}


def model_normalization(model_name: str, choice: str = "auto") -> str:
    """The input normalisation for a model: ``choice`` unless "auto", else the
    origin of the model's standard weights (the same whether or not they are
    loaded, so random and pretrained runs see the same inputs); ImageNet for a
    model with none."""
    if choice != "auto":
        return choice
    spec = PRETRAINED_FILES.get(model_name)
    if spec is not None:
        return spec.normalization
    return _NORMALIZATION_OF.get(model_name, "imagenet")


def weights_search_dirs(spec: PretrainedFile) -> list[Path]:
    """Folders searched, in order, for ``spec.filename``."""
    dirs = []
    if os.environ.get("SPERMGRADE_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["SPERMGRADE_WEIGHTS_DIR"]))
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    if spec.hf_repo:
        hf_cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
            os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")),
            "hub",
        )
        repo_dir = Path(hf_cache) / ("models--" + spec.hf_repo.replace("/", "--"))
        snapshots = sorted((repo_dir / "snapshots").glob("*"))
        dirs.extend(snapshots or [repo_dir / "snapshots" / "<revision>"])
    return dirs


def weights_resolve(*, model_name: str, weights: WeightsArg) -> Path | None:
    """Return the checkpoint path for ``weights``, or None for random init."""
    if weights is None or weights == RANDOM:
        return None
    if weights == PRETRAINED:
        spec = PRETRAINED_FILES.get(model_name)
        if spec is None:
            raise ValueError(
                f"Model {model_name!r} has no standard pretrained weights; pass "
                "weights='random' or a checkpoint path."
            )
        dirs = weights_search_dirs(spec)
        for folder in dirs:
            if (folder / spec.filename).is_file():
                return folder / spec.filename
        looked = "\n".join(f"  {folder / spec.filename}" for folder in dirs)
        raise FileNotFoundError(
            f"Pretrained weights for {model_name!r} ({spec.description}) not found. "
            f"Looked for:\n{looked}\n"
            f"Get {spec.filename} on a machine with internet access with:\n"
            f"  {spec.fetch_command}\n"
            "then copy it into $SPERMGRADE_WEIGHTS_DIR or the torch hub cache, or "
            "pass weights='/path/to/file'. For random initialisation pass "
            "weights='random'."
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file {str(path)!r} for {model_name!r} does not exist. Pass an "
            "existing checkpoint path, weights='pretrained' or weights='random'."
        )
    return path


def state_dict_load(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat state dict (containers unwrapped)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model_state", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict.")
    return {
        key.removeprefix("module."): value
        for key, value in state.items()
        if isinstance(value, torch.Tensor)
    }


def backbone_load(
    module: nn.Module, state: dict[str, torch.Tensor], *, source: str
) -> list[str]:
    """Copy matching tensors of ``state`` into ``module``; return the keys not set.

    Only keys with equal shapes are copied (classifier layers of the source are
    skipped). Raises ValueError when under 90 % of the module's tensors match,
    which means the file is not a checkpoint of this architecture.
    """
    own = module.state_dict()
    matched = {
        key: value
        for key, value in state.items()
        if key in own and own[key].shape == value.shape
    }
    if len(matched) < 0.9 * len(own):
        raise ValueError(
            f"{source} matches only {len(matched)} of {len(own)} tensors of this "
            "model: it is not a checkpoint of this architecture."
        )
    module.load_state_dict(matched, strict=False)
    return sorted(set(own) - set(matched))
