"""Negative controls: what a model scores when its inputs carry no information.

Every head of every model receives the speed features, so a model that ignored
the video would still score about what a kNN on the speed alone gives. A control
(``data.control``) takes one input away, identically in the training,
validation and test clips of a fold, so the comparison can tell what the video
adds:

- ``video_zeroed``: every frame is black (after normalisation a constant);
- ``video_shuffled``: each clip gets the frames of another patient's clip of the
  same split (train, validation or test), its own speed and target kept, so the
  pixels are real but unrelated to the grade;
- ``speed_zeroed``: the standardised speed features are 0 (the training mean).

The control is part of the run's config, so it is written beside the run and
inside its checkpoints.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch

from modeling.cv import Fold

if TYPE_CHECKING:
    from modeling.training import DeviceData

CONTROLS = ("none", "video_zeroed", "video_shuffled", "speed_zeroed")


def shuffle_across_patients(
    idx: np.ndarray, patients: np.ndarray, *, seed: int
) -> np.ndarray:
    """For each clip of ``idx``, the clip of ``idx`` whose frames it gets.

    Patients are put in a seeded random order, their clips one block each, and
    every clip takes the clip ``m`` places further on (cyclically), ``m`` being
    the largest block: with at least 2 m clips no clip gets its own patient's
    frames (with fewer, as few as the split allows). A permutation of ``idx``.
    """
    idx = np.asarray(idx, dtype=int)
    if len(idx) < 2:
        return idx.copy()
    groups = np.asarray(patients, dtype=str)[idx]
    names, group_of, counts = np.unique(groups, return_inverse=True, return_counts=True)
    rank = np.random.default_rng(seed).permutation(len(names))
    order = np.lexsort((np.arange(len(idx)), rank[group_of]))
    shift = int(counts.max())
    if shift >= len(idx):  # one patient only: any other clip
        shift = 1
    source = np.empty_like(idx)
    source[order] = idx[np.roll(order, -shift)]
    return source


def control_apply(
    data: DeviceData,
    *,
    fold: Fold,
    patient_ids: list[str] | np.ndarray,
    control: str,
    seed: int,
) -> DeviceData:
    """``data`` with ``control`` applied to every split of ``fold``."""
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}; choose from {CONTROLS}")
    if control == "none":
        return data
    if control == "speed_zeroed":
        return dataclasses.replace(data, speed=torch.zeros_like(data.speed))
    videos = data.videos
    if control == "video_zeroed":
        black = torch.zeros((1, *videos.shape[1:]), dtype=videos.dtype)
        return dataclasses.replace(
            data, videos=black.to(videos.device).expand_as(videos)
        )
    source = np.arange(len(videos))
    for part, idx in enumerate((fold.train, fold.val, fold.test)):
        source[idx] = shuffle_across_patients(
            idx, np.asarray(patient_ids), seed=seed + 101 * part
        )
    where = torch.as_tensor(source, dtype=torch.long, device=videos.device)
    return dataclasses.replace(data, videos=videos[where])
