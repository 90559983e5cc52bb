"""Local checkpoint loading. Nothing here ever downloads a file.

``weights`` arguments of the builders accept:

- ``"random"`` (or ``None``): random initialisation, an explicit choice;
- ``"pretrained"``: the model's standard pretrained file, looked up in
  ``$SPERMGRADE_WEIGHTS_DIR``, the torch hub cache (``$TORCH_HOME/hub/checkpoints``)
  and the Hugging Face hub cache; missing -> FileNotFoundError saying how to get it;
- a path to a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.pyth`` / ``.bin`` file.

The input normalisation follows where the weights came from
(``normalization_origin``): a file's own record (the ``normalization`` entry of
a safetensors header, which checkpoints written here carry, or the
``checkpoint.json`` beside it), else a file known by name (the standard files
below; facebookresearch/TimeSformer's ``TimeSformer_*.pyth`` releases, trained
with its 0.45 / 0.225 Kinetics statistics), else the model's standard weights.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
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
# Weights files known by name, beyond the standard ones (a glob on the file name):
# every facebookresearch/TimeSformer release (Kinetics-400/600, SSv2, HowTo100M)
# was trained with that code's DATA.MEAN 0.45 and DATA.STD 0.225.
KNOWN_FILES: dict[str, str] = {"TimeSformer_*.pyth": "kinetics"}
# The key of a safetensors header that records the file's input normalisation.
SAFETENSORS_KEY = "normalization"


@functools.lru_cache(maxsize=64)
def weights_normalization(path: str) -> tuple[str, str] | None:
    """(normalisation, where it was read) recorded for a weights file, or None
    when nothing says: its safetensors header, the ``checkpoint.json`` of the
    checkpoint folder it is in, or its name (``KNOWN_FILES``, the standard
    files). Cached: the trainer asks once per batch."""
    file = Path(path).expanduser()
    if file.suffix == ".safetensors" and file.is_file():
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as handle:
            recorded = (handle.metadata() or {}).get(SAFETENSORS_KEY)
        if recorded:
            return recorded, f"the safetensors header of {file}"
    beside = file.parent / "checkpoint.json"
    if beside.is_file():
        recorded = json.loads(beside.read_text()).get("input", {})
        if recorded.get("normalization"):
            return recorded["normalization"], f"{beside}"
    for pattern, name in KNOWN_FILES.items():
        if file.match(pattern):
            return name, f"the file name {file.name} ({pattern})"
    for spec in PRETRAINED_FILES.values():
        hub_dir = "models--" + (spec.hf_repo or "").replace("/", "--")
        if spec.filename == file.name and (
            spec.filename != "model.safetensors" or hub_dir in file.parts
        ):
            return spec.normalization, f"the file's origin ({spec.description})"
    return None


def normalization_origin(
    model_name: str, choice: str = "auto", weights: WeightsArg = None
) -> tuple[str, str]:
    """(input normalisation, why) for a model: ``choice`` unless "auto"; else
    what the weights file given as ``weights`` records (``weights_normalization``);
    else the origin of the model's standard weights (the same whether or not
    they are loaded, so random and pretrained runs see the same inputs);
    ImageNet for a model with none."""
    if choice != "auto":
        return choice, "data.normalization"
    if weights not in (None, RANDOM, PRETRAINED):
        recorded = weights_normalization(str(weights))
        if recorded is not None:
            return recorded
        warnings.warn(
            f"nothing records the input normalisation of {weights}; using "
            f"{model_name}'s standard one. Set data.normalization if the file "
            "was trained on other statistics.",
            stacklevel=2,
        )
    spec = PRETRAINED_FILES.get(model_name)
    if spec is not None:
        return spec.normalization, f"the standard weights of {model_name}"
    name = _NORMALIZATION_OF.get(model_name, "imagenet")
    return name, f"the default of {model_name}"


def model_normalization(
    model_name: str, choice: str = "auto", weights: WeightsArg = None
) -> str:
    """The input normalisation's name (``normalization_origin``)."""
    return normalization_origin(model_name, choice, weights)[0]


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
