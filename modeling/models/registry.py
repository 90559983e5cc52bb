"""Model registry: builders registered by name, built with ``create_model``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}

# Small keyword arguments per model for CPU tests and smoke runs: 4 frames of
# 32 px, random initialisation. ``create_model(name, **TINY_KWARGS[name])``.
TINY_KWARGS: dict[str, dict[str, Any]] = {}


def register_model(
    name: str, *, tiny_kwargs: dict[str, Any]
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a keyword-only builder under ``name`` with its tiny test kwargs."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"Model {name!r} is registered twice.")
        _BUILDERS[name] = builder
        TINY_KWARGS[name] = dict(tiny_kwargs)
        return builder

    return decorator


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_BUILDERS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments ``kwargs``."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(
            f"Unknown model {name!r}. Registered models: {', '.join(list_models())}."
        ) from None
    return builder(**kwargs)
