"""Named training profiles: a modeling config (``modeling/profiles.py``, shared
with the offline ``spermgrade-model train --profile``), the queues allowed to run
it, and what the admin may change on the start form.

``clinic`` trains on CPU in minutes (the demo, CPU-only labs); ``timesformer`` is
the paper's setting for GPUs (ViT-B TimeSformer, pretrained weights read from a
local file, 8 frames at 224 px, SGD, EMD, 3 folds); ``tiny`` is a smoke test
that finishes in seconds (tests, checking a new worker).
"""

from __future__ import annotations

from dataclasses import dataclass

from modeling.config import Config, ConfigError, config_from_dict, config_to_dict
from modeling.profiles import PROFILE_CONFIGS

# The start form's fields: name -> dotted config key.
OVERRIDE_KEYS = {
    "epochs": "optim.epochs",
    "k": "cv.k",
    "seed": "runtime.seed",
    "batch_size": "optim.batch_size",
    "loss": "loss.name",
}


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    config: dict
    queues: tuple[str, ...]  # the first is the default
    onnx: bool = False  # export the final model to ONNX (small CPU models)

    def config_resolve(self, overrides: dict | None = None) -> Config:
        """The profile's config with the form's overrides (names in OVERRIDE_KEYS)."""
        data = {section: dict(values) for section, values in self.config.items()}
        for name, value in (overrides or {}).items():
            if name not in OVERRIDE_KEYS:
                raise ConfigError(
                    f"{name!r} cannot be changed here; choose from "
                    f"{', '.join(OVERRIDE_KEYS)}"
                )
            section, key = OVERRIDE_KEYS[name].split(".")
            data.setdefault(section, {})[key] = value
        if "runtime" in data and "seed" in data["runtime"]:
            data.setdefault("cv", {})["seed"] = data["runtime"]["seed"]
        data.setdefault("runtime", {})["progress"] = False
        return config_from_dict(data)


PROFILES: dict[str, Profile] = {
    "clinic": Profile(
        name="clinic",
        title="Clinic model (CPU, minutes): compact X3D, 8 frames at 64 px",
        config=PROFILE_CONFIGS["clinic"],
        queues=("cpu", "gpu"),
        onnx=True,
    ),
    "timesformer": Profile(
        name="timesformer",
        title="TimeSformer, the paper's setting (GPU): ViT-B, 8 x 224 px, SGD, EMD",
        config=PROFILE_CONFIGS["timesformer"],
        queues=("gpu",),
    ),
    "tiny": Profile(
        name="tiny",
        title="Smoke test (CPU, seconds): a tiny network, 4 frames at 32 px",
        config=PROFILE_CONFIGS["tiny"],
        queues=("cpu", "gpu"),
    ),
}


def profile_get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown profile {name!r}; choose from {', '.join(PROFILES)}"
        ) from None


def config_as_dict(cfg: Config) -> dict:
    return config_to_dict(cfg)
