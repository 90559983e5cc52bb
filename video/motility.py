"""Recording-level motility, as a CASA system reports it: from every track of a
recording (not only the clips kept for grading), the share of progressive,
non-progressive and immotile sperm (WHO 6th ed. categories) and the mean
kinematics.

Each track is measured as a clip is, window by window: non-overlapping windows
of one clip span (``clip_frames`` frames at ``clip_fps``, the source frames
nearest to each clip frame's time, ``video.clips.span_indices``) in which at
least ``min_measured_fraction`` of the positions were measured (predicted
"coasting" positions count as gaps, filled by ``video.kinematics``); the
track's figures are the windows' means and its class follows from them
(``video.kinematics.motility_class_of``). Tracks with no such window are counted
as ``n_short`` and left out of the shares: a cell seen for a fraction of a
second cannot be classified. Speeds are in µm/s when the scale is
known, else px/s with the classification thresholds converted at the assumed
scale (``video.kinematics``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from video.clips import DEFAULT_CLIP_FPS, DEFAULT_CLIP_FRAMES, span_indices
from video.kinematics import (
    IMMOTILE_VAP_UM_S,
    IMMOTILE_VSL_UM_S,
    PROGRESSIVE_STR,
    PROGRESSIVE_VAP_UM_S,
    RAPID_VSL_UM_S,
    Kinematics,
    kinematics_compute,
    motility_class_of,
    ratio,
    threshold_scale,
)

CLASSES = ("progressive", "non-progressive", "immotile")
MEAN_FIELDS = ("vcl", "vsl", "vap", "lin", "str", "wob", "alh", "bcf")
_AVERAGED = ("vcl", "vsl", "vap", "alh", "alh_max", "bcf")


@dataclass(frozen=True)
class MotilityConfig:
    fps: float
    um_per_px: float | None = None
    clip_frames: int = DEFAULT_CLIP_FRAMES
    clip_fps: float | None = DEFAULT_CLIP_FPS
    min_measured_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be a positive number, got {self.fps}.")
        if self.clip_frames < 2:
            raise ValueError(f"clip_frames must be >= 2, got {self.clip_frames}.")
        if self.clip_fps is not None and not (
            np.isfinite(self.clip_fps) and self.clip_fps > 0
        ):
            raise ValueError(
                f"clip_fps must be a positive number, got {self.clip_fps}."
            )


def track_kinematics(
    points: np.ndarray, measured: np.ndarray | None, config: MotilityConfig
) -> Kinematics | None:
    """A track's kinematics: the mean over its non-overlapping clip-span windows
    that are well measured (first and last position measured, at least
    ``min_measured_fraction`` in all), classified from those means; None when no
    window qualifies (a track shorter than one span, or never measured well).

    Averaging the windows measures the cell, not one second of it, so the class
    of a detected track and of the cell's true path agree even when tracking
    started a little later than the cell came into view. ``measured`` (T,)
    marks detected positions; the others are treated as gaps.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    finite = np.isfinite(points).all(axis=1)
    measured = finite if measured is None else np.asarray(measured, bool) & finite
    offsets = span_indices(config.fps, config.clip_frames, config.clip_fps)
    span = int(offsets[-1]) + 1
    # The clip's own rate, as the pipeline gives its clips.
    clip_fps = config.clip_fps or config.fps
    windows: list[Kinematics] = []
    start = 0
    while start + span <= len(points):
        idx = start + offsets
        good = measured[idx]
        if good[0] and good[-1] and good.mean() >= config.min_measured_fraction:
            window = points[idx].copy()
            window[~good] = np.nan
            windows.append(
                kinematics_compute(
                    track=window, fps=clip_fps, um_per_px=config.um_per_px
                )
            )
            start += span
        else:
            start += 1
    if not windows:
        return None
    mean = {f: float(np.mean([getattr(k, f) for k in windows])) for f in _AVERAGED}
    to_unit = threshold_scale(config.um_per_px)
    mean["str"] = ratio(mean["vsl"], mean["vap"])
    mean["lin"] = ratio(mean["vsl"], mean["vcl"])
    mean["wob"] = ratio(mean["vap"], mean["vcl"])
    return replace(
        windows[0],
        **mean,
        motility_class=motility_class_of(
            vsl=mean["vsl"], vap=mean["vap"], str_=mean["str"], to_unit=to_unit
        ),
        n_points=sum(k.n_points for k in windows),
    )


def motility_summary(
    kinematics: Iterable[Kinematics],
    *,
    n_short: int = 0,
    um_per_px: float | None = None,
    source: str = "all tracks",
    vap_values_max: int = 5000,
) -> dict:
    """Counts and % per WHO class, mean kinematics, and the VAP values (for the
    histogram) with the thresholds in the speeds' unit."""
    rows = list(kinematics)
    unit = "um/s" if um_per_px is not None else "px/s"
    to_unit = threshold_scale(um_per_px)
    counts = {name: sum(k.motility_class == name for k in rows) for name in CLASSES}
    n = len(rows)
    percent = {
        name: (round(100.0 * counts[name] / n, 1) if n else None) for name in CLASSES
    }
    means = {
        field: (
            round(float(np.mean([getattr(k, field) for k in rows])), 3) if n else None
        )
        for field in MEAN_FIELDS
    }
    return {
        "source": source,
        "n_tracks": n,
        "n_short": int(n_short),
        "counts": counts,
        "percent": percent,
        "mean": means,
        "unit": unit,
        "scale_assumed": um_per_px is None,
        "vap": [round(float(k.vap), 2) for k in rows[:vap_values_max]],
        "thresholds": {
            "immotile_vap": IMMOTILE_VAP_UM_S * to_unit,
            "immotile_vsl": IMMOTILE_VSL_UM_S * to_unit,
            "progressive_vap": PROGRESSIVE_VAP_UM_S * to_unit,
            "progressive_str": PROGRESSIVE_STR,
            "rapid_vsl": RAPID_VSL_UM_S * to_unit,
        },
    }


class MotilityCounter:
    """Collects tracks one by one (the pipeline feeds each as it ends), keeping
    only their kinematics: memory grows with the number of tracks, not frames."""

    def __init__(self, config: MotilityConfig, *, source: str = "all tracks"):
        self.config = config
        self.source = source
        self.rows: list[Kinematics] = []
        self.n_short = 0

    def add(self, points, measured=None) -> Kinematics | None:
        kin = track_kinematics(points, measured, self.config)
        if kin is None:
            self.n_short += 1
        else:
            self.rows.append(kin)
        return kin

    def summary(self) -> dict:
        return motility_summary(
            self.rows,
            n_short=self.n_short,
            um_per_px=self.config.um_per_px,
            source=self.source,
        )
