"""Sperm kinematics from a head track, as the WHO laboratory manual (6th ed., 2021,
section 3.5 / CASA terminology) defines them.

Given head positions p_0..p_{T-1} sampled at ``fps``, duration D = (T - 1) / fps:

- VCL, curvilinear velocity: sum of |p_{i+1} - p_i| / D (the actual path).
- VSL, straight-line velocity: |p_{T-1} - p_0| / D.
- VAP, average-path velocity: length of the *average path* / its duration. The
  average path is the 5-point running mean of the positions (``np.convolve``
  'valid': T - 4 points spanning (T - 5) / fps). Tracks shorter than 5 points use
  the straight line as the average path.
- LIN = VSL / VCL, STR = VSL / VAP, WOB = VAP / VCL (0 when the divisor is 0).
- ALH, amplitude of lateral head displacement: WHO allows the maximum or the mean of
  the head's lateral displacement about the average path. We report the **mean**
  form, ALH = 2 x mean |lateral deviation| (peak-to-peak amplitude, less sensitive
  to one noisy frame than the maximum over a short 16-frame clip); ``alh_max`` =
  2 x max |deviation| is reported as well. The deviation of p_i is its signed
  distance from the average path, measured perpendicular to the average path's
  local direction at the time-matched average point.
- BCF, beat-cross frequency: the number of times the curvilinear path crosses the
  average path (sign changes of the signed deviation) per second.

Units: micrometres per second (``um/s``) when ``um_per_px`` is known, otherwise
pixels per second (``px/s``); ALH in um or px; BCF in Hz.

Motility class (WHO 6th ed. categories progressive / non-progressive / immotile;
the manual describes them in words, so CASA-style numeric cut-offs are used and
stated here):

- **immotile**: VCL < 5 um/s (no active movement);
- **progressive**: moving actively, linearly or in a large circle: VAP >= 25 um/s
  and STR >= 0.8, or VSL >= 25 um/s (the WHO rapid-progressive speed);
- **non-progressive**: every other moving cell (small circles, beating in place).

When ``um_per_px`` is unknown the thresholds are converted to pixels with
``assumed_um_per_px`` (default 0.5 um/px, a 40x objective); the result says so in
``scale_assumed``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

IMMOTILE_VCL_UM_S = 5.0
PROGRESSIVE_VAP_UM_S = 25.0
PROGRESSIVE_STR = 0.8
RAPID_VSL_UM_S = 25.0
DEFAULT_UM_PER_PX = 0.5


@dataclass(frozen=True)
class Kinematics:
    vcl: float
    vsl: float
    vap: float
    lin: float
    str: float
    wob: float
    alh: float
    alh_max: float
    bcf: float
    motility_class: str
    unit: str
    scale_assumed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _fill_gaps(track: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN rows; edges take the nearest valid point."""
    track = np.asarray(track, dtype=np.float64).copy()
    valid = ~np.isnan(track).any(axis=1)
    if valid.all() or valid.sum() < 2:
        return track[valid] if valid.sum() < 2 else track
    t = np.arange(len(track))
    for axis in range(2):
        track[:, axis] = np.interp(t, t[valid], track[valid, axis])
    return track


def average_path(points: np.ndarray, *, window: int = 5) -> np.ndarray:
    """The ``window``-point running mean ('valid' part) of (T, 2) positions."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < window:
        return points[[0, -1]] if len(points) else points
    kernel = np.ones(window) / window
    return np.stack(
        [np.convolve(points[:, a], kernel, mode="valid") for a in range(2)], axis=1
    )


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 1e-12 else 0.0


def kinematics_compute(
    *,
    track: np.ndarray,
    fps: float,
    um_per_px: float | None = None,
    assumed_um_per_px: float = DEFAULT_UM_PER_PX,
) -> Kinematics:
    """WHO kinematics of a (T, 2) head track in recording pixels (NaN = gap)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}.")
    if um_per_px is not None and um_per_px <= 0:
        raise ValueError(f"um_per_px must be positive, got {um_per_px}.")
    points = _fill_gaps(np.asarray(track, dtype=np.float64).reshape(-1, 2))
    scale = um_per_px if um_per_px is not None else 1.0
    unit = "um/s" if um_per_px is not None else "px/s"
    if len(points) < 2:
        return Kinematics(
            vcl=0.0, vsl=0.0, vap=0.0, lin=0.0, str=0.0, wob=0.0, alh=0.0,
            alh_max=0.0, bcf=0.0, motility_class="immotile", unit=unit,
            scale_assumed=um_per_px is None,
        )  # fmt: skip
    points = points * scale
    duration = (len(points) - 1) / fps
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    vcl = float(steps.sum() / duration)
    vsl = float(np.linalg.norm(points[-1] - points[0]) / duration)
    window = 5
    if len(points) >= window:
        avg = average_path(points, window=window)
        avg_duration = (len(avg) - 1) / fps
        vap = float(np.linalg.norm(np.diff(avg, axis=0), axis=1).sum() / avg_duration)
        # Time-matched curvilinear points: the centre of each running window.
        half = window // 2
        matched = points[half : half + len(avg)]
        tangent = np.gradient(avg, axis=0)
        norm = np.linalg.norm(tangent, axis=1, keepdims=True)
        tangent = np.where(norm > 1e-9, tangent / np.maximum(norm, 1e-12), 0.0)
        rel = matched - avg
        deviation = rel[:, 0] * tangent[:, 1] - rel[:, 1] * tangent[:, 0]
        alh = float(2 * np.abs(deviation).mean())
        alh_max = float(2 * np.abs(deviation).max())
        signs = np.sign(deviation[np.abs(deviation) > 1e-9])
        crossings = int(np.count_nonzero(signs[1:] != signs[:-1]))
        bcf = crossings / avg_duration if avg_duration > 0 else 0.0
    else:
        vap, alh, alh_max, bcf = vsl, 0.0, 0.0, 0.0
    # Classification thresholds in the unit of the speeds above.
    to_unit = 1.0 if um_per_px is not None else 1.0 / assumed_um_per_px
    str_ = _ratio(vsl, vap)
    if vcl < IMMOTILE_VCL_UM_S * to_unit:
        motility = "immotile"
    elif (vap >= PROGRESSIVE_VAP_UM_S * to_unit and str_ >= PROGRESSIVE_STR) or (
        vsl >= RAPID_VSL_UM_S * to_unit
    ):
        motility = "progressive"
    else:
        motility = "non-progressive"
    return Kinematics(
        vcl=vcl,
        vsl=vsl,
        vap=vap,
        lin=_ratio(vsl, vcl),
        str=str_,
        wob=_ratio(vap, vcl),
        alh=alh,
        alh_max=alh_max,
        bcf=float(bcf),
        motility_class=motility,
        unit=unit,
        scale_assumed=um_per_px is None,
    )
