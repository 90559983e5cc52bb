"""Sperm kinematics from a head track, as the WHO laboratory manual (6th ed., 2021,
section 3.5 / CASA terminology) defines them.

Given head positions p_0..p_{T-1} sampled at ``fps``, duration D = (T - 1) / fps:

- VCL, curvilinear velocity: sum of |p_{i+1} - p_i| / D (the actual path).
- VSL, straight-line velocity: |p_{T-1} - p_0| / D.
- VAP, average-path velocity: length of the *average path* / D. The average path
  runs from p_0 through the 5-point running means of the interior (``np.convolve``
  'valid', T - 4 points) to p_{T-1}: the same two endpoints and the same duration
  as the curvilinear and straight-line paths. Tracks shorter than 5 points use the
  straight line as the average path (``short_track`` says so).
- LIN = VSL / VCL, STR = VSL / VAP, WOB = VAP / VCL (0 when the divisor is 0).
  All three lie in [0, 1] by construction: the straight line is the shortest path
  between the shared endpoints (LIN, STR), and each step of the curvilinear path
  enters the average path's length with a total weight of exactly one (the start
  segment p_0 -> a_2 carries steps 0..3 with weights 4/5..1/5, every interior step
  a_i -> a_{i+1} carries five steps at 1/5, the end segment mirrors the start), so
  by the triangle inequality VAP <= VCL (WOB). Rounding is clipped at 1.
- ALH, amplitude of lateral head displacement: WHO allows the maximum or the mean of
  the head's lateral displacement about the average path. We report the **mean**
  form, ALH = 2 x mean |lateral deviation| (peak-to-peak amplitude, less sensitive
  to one noisy frame than the maximum over a short 16-frame clip); ``alh_max`` =
  2 x max |deviation| is reported as well. The deviation of p_i is its signed
  distance from the average path, measured perpendicular to the average path's
  local direction at the time-matched average point.
- BCF, beat-cross frequency: the number of times the curvilinear path crosses the
  average path (sign changes of the signed deviation) per second.

Every track gives figures, never an exception: a track of 0 or 1 valid point is
immotile with zero speeds; ``n_points`` is the number of positions used and
``short_track`` is true below 5 (no average path, no ALH or BCF).

Units: micrometres per second (``um/s``) when ``um_per_px`` is known, otherwise
pixels per second (``px/s``); ALH in um or px; BCF in Hz.

Motility class (WHO 6th ed. categories progressive / non-progressive / immotile;
the manual describes them in words, so CASA-style numeric cut-offs are used and
stated here):

- **immotile** (static): VAP < 5 um/s and VSL < 11 um/s (no active movement).
  CASA systems cut static cells on the average and straight-line paths, not on
  VCL: the detected centroid of a still head jitters by a fraction of a pixel
  per frame, which alone gives a VCL of 5.8–6.7 um/s at 15 fps on the synthetic
  recordings' detections of cells whose true VCL is 3.0–3.5 um/s, while their
  VAP stays small;
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

IMMOTILE_VAP_UM_S = 5.0
IMMOTILE_VSL_UM_S = 11.0
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
    n_points: int = 0
    short_track: bool = False

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


def threshold_scale(
    um_per_px: float | None, assumed_um_per_px: float = DEFAULT_UM_PER_PX
) -> float:
    """What converts the µm/s thresholds to the speeds' unit: 1 in µm/s, else
    pixels at the assumed scale."""
    return 1.0 if um_per_px is not None else 1.0 / assumed_um_per_px


def ratio(a: float, b: float) -> float:
    """a / b for the WHO ratios (a <= b in exact arithmetic): in [0, 1]."""
    return float(min(1.0, max(0.0, a / b))) if b > 1e-12 else 0.0


def _lateral(points: np.ndarray, avg: np.ndarray) -> tuple[float, float, int]:
    """ALH (2 x mean |deviation|), ALH max and the crossings of the curvilinear
    path with the average path. ``avg`` is the full average path (endpoints
    included); its interior point k is time-matched with points[k + 1] (the
    centre of its running window) and its direction is the central difference of
    its neighbours on the average path."""
    interior = avg[1:-1]
    matched = points[2 : 2 + len(interior)]
    tangent = avg[2:] - avg[:-2]
    norm = np.linalg.norm(tangent, axis=1, keepdims=True)
    tangent = np.where(norm > 1e-9, tangent / np.maximum(norm, 1e-12), 0.0)
    rel = matched - interior
    deviation = rel[:, 0] * tangent[:, 1] - rel[:, 1] * tangent[:, 0]
    signs = np.sign(deviation[np.abs(deviation) > 1e-9])
    crossings = int(np.count_nonzero(signs[1:] != signs[:-1]))
    return (
        float(2 * np.abs(deviation).mean()),
        float(2 * np.abs(deviation).max()),
        crossings,
    )


def motility_class_of(*, vsl: float, vap: float, str_: float, to_unit: float) -> str:
    """The WHO class from the speeds (see the module doc); ``to_unit`` converts
    the µm/s thresholds to the speeds' unit (1 for µm/s)."""
    if vap < IMMOTILE_VAP_UM_S * to_unit and vsl < IMMOTILE_VSL_UM_S * to_unit:
        return "immotile"
    if (vap >= PROGRESSIVE_VAP_UM_S * to_unit and str_ >= PROGRESSIVE_STR) or (
        vsl >= RAPID_VSL_UM_S * to_unit
    ):
        return "progressive"
    return "non-progressive"


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
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < 2:
        return Kinematics(
            vcl=0.0, vsl=0.0, vap=0.0, lin=0.0, str=0.0, wob=0.0, alh=0.0,
            alh_max=0.0, bcf=0.0, motility_class="immotile", unit=unit,
            scale_assumed=um_per_px is None, n_points=len(points),
            short_track=True,
        )  # fmt: skip
    points = points * scale
    duration = (len(points) - 1) / fps
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    vcl = float(steps.sum() / duration)
    vsl = float(np.linalg.norm(points[-1] - points[0]) / duration)
    window = 5
    short = len(points) < window
    if not short:
        avg = np.concatenate(
            [points[:1], average_path(points, window=window), points[-1:]]
        )
        vap = float(np.linalg.norm(np.diff(avg, axis=0), axis=1).sum() / duration)
        alh, alh_max, crossings = _lateral(points, avg)
        # crossings can be seen only where the running mean is defined
        span = (len(avg) - 3) / fps
        bcf = crossings / span if span > 0 else 0.0
    else:
        vap, alh, alh_max, bcf = vsl, 0.0, 0.0, 0.0
    # Classification thresholds in the unit of the speeds above.
    to_unit = threshold_scale(um_per_px, assumed_um_per_px)
    str_ = ratio(vsl, vap)
    motility = motility_class_of(vsl=vsl, vap=vap, str_=str_, to_unit=to_unit)
    return Kinematics(
        vcl=vcl,
        vsl=vsl,
        vap=vap,
        lin=ratio(vsl, vcl),
        str=str_,
        wob=ratio(vap, vcl),
        alh=alh,
        alh_max=alh_max,
        bcf=float(bcf),
        motility_class=motility,
        unit=unit,
        scale_assumed=um_per_px is None,
        n_points=len(points),
        short_track=short,
    )
