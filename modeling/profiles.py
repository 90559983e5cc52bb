"""The platform's training profiles as plain config dicts (pure: no Django).

The same names train the same models in the platform (``registry/profiles.py``
adds the queues and the start form) and offline (``spermgrade-model train
--profile clinic``): ``clinic`` trains on CPU in minutes, ``timesformer`` is the
paper's setting for GPUs, ``tiny`` is a smoke test that finishes in seconds.
"""

from __future__ import annotations

import copy

from modeling.config import ConfigError

_CPU_RUNTIME = {"device": "cpu", "eval_batch_size": 16}

PROFILE_CONFIGS: dict[str, dict] = {
    "clinic": {
        "model": {
            "name": "clinic",
            "kwargs": {"tiny": True, "weights": "random", "input_size": 64},
        },
        "data": {"n_frames": 8, "size": 64},
        "augment": {"rotation_degrees": 180.0},
        "optim": {
            "optimizer": "adamw",
            "lr": 3e-3,
            "weight_decay": 1e-4,
            "epochs": 12,
            "batch_size": 8,
        },
        "cv": {"k": 3},
        "runtime": _CPU_RUNTIME,
    },
    "timesformer": {
        "model": {"name": "timesformer", "kwargs": {}},
        "runtime": {"device": "auto"},
    },
    "tiny": {
        "model": {
            "name": "clinic",
            "kwargs": {"tiny": True, "weights": "random", "input_size": 16},
        },
        "data": {"n_frames": 4, "size": 32},
        "optim": {"optimizer": "adamw", "lr": 3e-3, "epochs": 2, "batch_size": 4},
        "cv": {"k": 2, "val_fraction": 0.3},
        "runtime": _CPU_RUNTIME,
    },
}


def profile_config(name: str) -> dict:
    """A copy of profile ``name``'s config dict (sections of keys)."""
    try:
        return copy.deepcopy(PROFILE_CONFIGS[name])
    except KeyError:
        raise ConfigError(
            f"unknown profile {name!r}; choose from {', '.join(PROFILE_CONFIGS)}"
        ) from None
