"""The synthetic scene: cells (shape and motion from quality), debris, background
and the phase-contrast composition of a frame. ``video.synthetic`` renders clips and
recordings from it."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Geometry at the default magnification (about 0.5 micrometre per pixel).
UM_PER_PX = 0.5
HEAD_LENGTH_PX = 11.0
HEAD_ASPECT = 1.6  # length / width of a normal head
MIDPIECE_LENGTH_PX = 13.0
TAIL_LENGTH_PX = 80.0  # flagellum after the midpiece
MAX_PROGRESSIVE_SPEED_PX_S = 120.0  # about 60 um/s
IMMOTILE_BELOW = 0.15
POLARITIES = ("bright", "dark")

_SHIFT = 4  # OpenCV fixed-point drawing: coordinates are multiplied by 2**4
_SCALE = float(1 << _SHIFT)
_HEAD_POINTS = 28
_FLAGELLUM_POINTS = 48

# Phase-contrast composition (grey levels).
_BACKGROUND_LEVEL = 150.0
_CORE_GAIN = 95.0  # bright object core
_HALO_GAIN = 60.0  # dark ring around bright objects
_DARK_GAIN = 70.0  # dark debris


# --------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class CellShape:
    """How one cell looks (pixels, radians)."""

    head_length: float
    head_width: float
    head_taper: float  # 0 = ellipse, 0.6 = strongly pyriform (narrow posterior)
    head_harmonics: tuple[tuple[float, float], ...]  # (amplitude, phase) for k=2,3,4
    midpiece_length: float
    midpiece_bend: float  # kink at the neck
    tail_length: float
    tail_coil: float  # curvature (1/px) of a coiled tail
    brightness: float  # 0.8..1.1 multiplies the drawn intensity


@dataclass(frozen=True)
class CellMotion:
    """How one cell moves."""

    progressive_speed: float  # px/s along the average path
    turn_rate: float  # rad/s; circling when large
    heading_noise: float  # rad/sqrt(s) random walk of the heading
    wobble: float  # half amplitude (px) of lateral head displacement
    beat_hz: float
    beat_amplitude: float  # rad, tangent-angle amplitude of the flagellar wave
    brownian: float  # px per frame of isotropic jitter (immotile cells)


@dataclass
class CellPath:
    """A cell's state over time, in field pixels."""

    centers: np.ndarray  # (T, 2) head centre x, y
    headings: np.ndarray  # (T,) direction of travel
    phases: np.ndarray  # (T,) beat phase


@dataclass
class Cell:
    quality: float
    shape: CellShape
    motion: CellMotion
    path: CellPath
    info: dict
    outlines: CellOutlines | None = field(default=None, repr=False)


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def cell_shape_from_quality(q_shape: float, rng: np.random.Generator) -> tuple:
    """Shape for a shape quality; returns (CellShape, defect severity, defect names).

    The worse the quality, the more likely and the stronger each defect.
    """
    d = 1.0 - _clip01(q_shape)
    defects: list[str] = []
    magnitudes: list[float] = []

    def present(weight: float = 1.0) -> bool:
        # Almost no defects above q_shape ~ 0.8; two or three below 0.3.
        return rng.random() < weight * _clip01((d - 0.2) * 1.1)

    size = 1.0 + rng.normal(0.0, 0.04)
    if present(0.7):
        sign = rng.choice([-1.0, 1.0])
        size += sign * (0.2 + 0.35 * d)
        defects.append("macrocephalic" if sign > 0 else "microcephalic")
        magnitudes.append(0.3 + 0.7 * d)
    aspect = HEAD_ASPECT + rng.normal(0.0, 0.06)
    if present(0.7):
        if rng.random() < 0.5:
            aspect += 0.5 + 0.9 * d
            defects.append("tapered")
        else:
            aspect = 1.0 + 0.15 * rng.random()
            defects.append("round")
        magnitudes.append(0.3 + 0.7 * d)
    taper = 0.0
    if present(0.5):
        taper = 0.25 + 0.4 * d * rng.random()
        defects.append("pyriform")
        magnitudes.append(taper / 0.65)
    harmonics = tuple(
        (float(rng.normal(0.0, 0.015)), float(rng.uniform(0, 2 * np.pi)))
        for _ in range(3)
    )
    if present(0.6):
        strength = 0.08 + 0.2 * d
        harmonics = tuple(
            (float(strength * rng.uniform(0.4, 1.0)), float(rng.uniform(0, 2 * np.pi)))
            for _ in range(3)
        )
        defects.append("amorphous")
        magnitudes.append(strength / 0.28)
    bend = float(rng.normal(0.0, 0.05))
    if present(0.5):
        bend = float(rng.choice([-1.0, 1.0]) * (0.5 + 0.9 * d))
        defects.append("bent_midpiece")
        magnitudes.append(abs(bend) / 1.4)
    tail = TAIL_LENGTH_PX * (1.0 + rng.normal(0.0, 0.05))
    if present(0.45):
        tail *= 0.25 + 0.45 * (1.0 - d)
        defects.append("short_tail")
        magnitudes.append(0.4 + 0.6 * d)
    coil = 0.0
    if present(0.45):
        coil = float(rng.choice([-1.0, 1.0]) / (5.0 + 14.0 * (1.0 - d)))
        defects.append("coiled_tail")
        magnitudes.append(0.4 + 0.6 * d)
    length = HEAD_LENGTH_PX * size
    shape = CellShape(
        head_length=float(length),
        head_width=float(length / aspect),
        head_taper=float(taper),
        head_harmonics=harmonics,
        midpiece_length=float(MIDPIECE_LENGTH_PX * (1.0 + rng.normal(0.0, 0.05))),
        midpiece_bend=bend,
        tail_length=float(tail),
        tail_coil=coil,
        brightness=float(np.clip(rng.normal(1.0, 0.06), 0.8, 1.15)),
    )
    severity = 1.0 - float(np.prod([1.0 - min(1.0, m) for m in magnitudes]))
    return shape, severity, defects


def cell_motion_from_quality(
    q_speed: float, q_path: float, rng: np.random.Generator
) -> CellMotion:
    """Motion: fast when ``q_speed`` is good; straight, regular and vigorous in
    its beat when ``q_path`` is good; circling or still when both are poor.

    The two are drawn around one motion quality so that a speed figure alone does
    not tell the whole motion (the path's shape and the beat need the video).
    """
    q_speed, q_path = _clip01(q_speed), _clip01(q_path)
    if 0.5 * (q_speed + q_path) < IMMOTILE_BELOW:
        return CellMotion(0.0, 0.0, 0.0, 0.0, 0.0, 0.02 * rng.random(), 0.25)
    drive = _clip01((q_speed - IMMOTILE_BELOW) / (1.0 - IMMOTILE_BELOW))
    vigour = _clip01((q_path - IMMOTILE_BELOW) / (1.0 - IMMOTILE_BELOW))
    speed = MAX_PROGRESSIVE_SPEED_PX_S * drive**1.3 * float(rng.lognormal(0.0, 0.1))
    q = q_path
    turn = float(rng.choice([-1.0, 1.0]) * (3.0 * (1.0 - q) ** 2 + rng.normal(0, 0.1)))
    return CellMotion(
        progressive_speed=float(speed),
        turn_rate=turn,
        heading_noise=0.15 + 0.5 * (1.0 - q),
        wobble=0.4 + 1.6 * vigour,
        beat_hz=float(2.0 + 5.0 * vigour + rng.normal(0.0, 0.3)),
        beat_amplitude=float(0.2 + 0.5 * vigour),
        brownian=0.05,
    )


def simulate_path(
    motion: CellMotion,
    *,
    n_frames: int,
    fps: float,
    start: tuple[float, float],
    heading: float,
    rng: np.random.Generator,
) -> CellPath:
    """Integrate the average path, then add wobble and jitter (vectorised over T)."""
    dt = 1.0 / fps
    steps = rng.normal(0.0, motion.heading_noise * np.sqrt(dt), n_frames)
    steps[0] = 0.0
    headings = heading + np.cumsum(
        steps + motion.turn_rate * dt * (np.arange(n_frames) > 0)
    )
    velocity = motion.progressive_speed * np.stack(
        [np.cos(headings), np.sin(headings)], axis=1
    )
    displacement = np.vstack([np.zeros((1, 2)), np.cumsum(velocity[1:] * dt, axis=0)])
    phase0 = rng.uniform(0, 2 * np.pi)
    phases = phase0 + 2 * np.pi * motion.beat_hz * dt * np.arange(n_frames)
    lateral = np.stack([-np.sin(headings), np.cos(headings)], axis=1)
    wobble = motion.wobble * np.sin(phases)[:, None] * lateral
    jitter = np.cumsum(rng.normal(0.0, motion.brownian, (n_frames, 2)), axis=0)
    centers = np.asarray(start, dtype=float) + displacement + wobble + jitter
    return CellPath(centers=centers, headings=headings, phases=phases)


def make_cell(
    *,
    quality: float,
    rng: np.random.Generator,
    n_frames: int,
    fps: float,
    start: tuple[float, float],
    heading: float | None = None,
) -> Cell:
    q = _clip01(quality)
    split = float(rng.normal(0.0, 0.12))
    q_motion, q_shape = _clip01(q + split), _clip01(q - split)
    shape, severity, defects = cell_shape_from_quality(q_shape, rng)
    motion_split = float(rng.normal(0.0, 0.12))
    q_speed, q_path = _clip01(q_motion + motion_split), _clip01(q_motion - motion_split)
    motion = cell_motion_from_quality(q_speed, q_path, rng)
    if heading is None:
        heading = float(rng.uniform(0, 2 * np.pi))
    path = simulate_path(
        motion, n_frames=n_frames, fps=fps, start=start, heading=heading, rng=rng
    )
    info = {
        "quality": q,
        "q_motion": q_motion,
        "q_shape": q_shape,
        "q_speed": q_speed,
        "q_path": q_path,
        "shape_defect": severity,
        "defects": defects,
        "motile": motion.progressive_speed > 0,
        "progressive_speed_px_s": motion.progressive_speed,
        "turn_rate_rad_s": motion.turn_rate,
        "wobble_px": motion.wobble,
        "beat_hz": motion.beat_hz,
        "beat_amplitude_rad": motion.beat_amplitude,
        "head_length_px": shape.head_length,
        "head_width_px": shape.head_width,
        "tail_length_px": shape.tail_length,
        "midpiece_bend_rad": shape.midpiece_bend,
        "tail_coil_per_px": shape.tail_coil,
    }
    return Cell(quality=q, shape=shape, motion=motion, path=path, info=info)


@dataclass
class CellOutlines:
    """A cell's drawn geometry in every frame (field pixels), computed at once."""

    heads: np.ndarray  # (T, K, 2) head polygon
    flagella: np.ndarray  # (T, N, 2) neck to tail tip
    split: int  # flagellum points [:split] are the midpiece
    heads_fixed: np.ndarray  # the same in OpenCV fixed point, int32
    flagella_fixed: np.ndarray


def cell_outlines(cell: Cell) -> CellOutlines:
    """Head polygons and flagellum polylines for all frames (vectorised, cached)."""
    if cell.outlines is not None:
        return cell.outlines
    shape, motion, path = cell.shape, cell.motion, cell.path
    phase = path.phases[:, None]  # (T, 1)
    yaw = 0.35 * motion.beat_amplitude * np.sin(path.phases - 0.6)
    axis_angle = (path.headings + yaw)[:, None]
    ua = np.concatenate([np.cos(axis_angle), np.sin(axis_angle)], axis=1)  # (T, 2)
    un = np.stack([-ua[:, 1], ua[:, 0]], axis=1)

    beta = np.linspace(0.0, 2 * np.pi, _HEAD_POINTS, endpoint=False)
    radius = np.ones_like(beta)
    for k, (amp, ph) in enumerate(shape.head_harmonics, start=2):
        radius = radius + amp * np.cos(k * beta + ph)
    x = 0.5 * shape.head_length * np.cos(beta) * radius
    y = 0.5 * shape.head_width * np.sin(beta) * radius
    y = y * (1.0 - shape.head_taper * np.clip(-np.cos(beta), 0.0, 1.0))
    centers = path.centers[:, None, :]
    heads = (
        centers + x[None, :, None] * ua[:, None, :] + y[None, :, None] * un[:, None, :]
    )

    total = shape.midpiece_length + shape.tail_length
    s = np.linspace(0.0, total, _FLAGELLUM_POINTS)
    ds = s[1] - s[0]
    envelope = 0.25 + 0.75 * s / total
    wavenumber = 2 * np.pi / max(total, 1.0)
    psi = (
        shape.midpiece_bend
        + shape.tail_coil * np.clip(s - shape.midpiece_length, 0.0, None)
        + motion.beat_amplitude * envelope * np.cos(wavenumber * s - phase)
    )  # (T, N)
    angle = axis_angle + np.pi + psi
    steps = ds * np.stack([np.cos(angle), np.sin(angle)], axis=2)  # (T, N, 2)
    neck = path.centers - 0.45 * shape.head_length * ua  # (T, 2)
    offsets = np.concatenate(
        [np.zeros_like(steps[:, :1]), np.cumsum(steps[:, :-1], axis=1)], axis=1
    )
    flagella = neck[:, None, :] + offsets
    cell.outlines = CellOutlines(
        heads=heads,
        flagella=flagella,
        split=int(np.searchsorted(s, shape.midpiece_length)) + 1,
        heads_fixed=np.round(heads * _SCALE).astype(np.int32),
        flagella_fixed=np.round(flagella * _SCALE).astype(np.int32),
    )
    return cell.outlines


def cell_outline(cell: Cell, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head polygon (K, 2), midpiece polyline and tail polyline at frame ``t``."""
    o = cell_outlines(cell)
    return o.heads[t], o.flagella[t, : o.split], o.flagella[t, o.split - 1 :]


# Tail drawn in three pieces of falling intensity (it thins towards the tip).
_TAIL_VALUES = (125, 100, 75)


def draw_cell(layer: np.ndarray, cell: Cell, t: int, origin: np.ndarray) -> None:
    """Draw ``cell`` at frame ``t`` on the uint8 ``layer``; ``origin`` is integer."""
    o = cell_outlines(cell)
    shift = np.round(np.asarray(origin) * _SCALE).astype(np.int32)
    b = cell.shape.brightness
    flagellum = o.flagella_fixed[t] - shift
    tail = flagellum[o.split - 1 :]
    bounds = np.linspace(0, len(tail) - 1, len(_TAIL_VALUES) + 1).round().astype(int)
    # Tail first, then midpiece, then the head on top.
    for i, value in enumerate(_TAIL_VALUES):
        piece = tail[bounds[i] : bounds[i + 1] + 1]
        cv2.polylines(layer, [piece], False, int(value * b), 1, cv2.LINE_AA, _SHIFT)
    cv2.polylines(
        layer, [flagellum[: o.split]], False, int(150 * b), 2, cv2.LINE_AA, _SHIFT
    )
    cv2.fillPoly(
        layer, [o.heads_fixed[t] - shift], int(min(255, 250 * b)), cv2.LINE_AA, _SHIFT
    )


# -------------------------------------------------------------------------- debris
@dataclass
class Debris:
    """Round or irregular particles, static or drifting (field pixels)."""

    positions: np.ndarray  # (N, 2) at frame 0
    velocities: np.ndarray  # (N, 2) px per frame
    radii: np.ndarray  # (N,)
    axes: np.ndarray  # (N, 2) ellipse semi-axes
    angles: np.ndarray  # (N,) degrees
    bright: np.ndarray  # (N,) bool
    values: np.ndarray  # (N,) drawing intensity

    def at(self, t: int) -> np.ndarray:
        return self.positions + t * self.velocities


def make_debris(
    n: int, *, low: np.ndarray, high: np.ndarray, rng: np.random.Generator
) -> Debris:
    positions = rng.uniform(low, high, (n, 2))
    drifting = rng.random(n) < 0.4
    velocities = rng.normal(0.0, 0.6, (n, 2)) * drifting[:, None]
    # Debris is round-ish and either much smaller or larger than a head.
    small = rng.random(n) < 0.65
    radii = np.where(small, rng.uniform(1.0, 2.6, n), rng.uniform(6.0, 11.0, n))
    elong = rng.uniform(0.75, 1.0, n)
    axes = np.stack([radii, radii * elong], axis=1)
    return Debris(
        positions=positions,
        velocities=velocities,
        radii=radii,
        axes=axes,
        angles=rng.uniform(0, 180, n),
        bright=rng.random(n) < 0.55,
        values=rng.uniform(90, 200, n),
    )


def draw_debris(
    bright_layer: np.ndarray,
    dark_layer: np.ndarray,
    debris: Debris,
    t: int,
    origin: np.ndarray,
) -> np.ndarray:
    """Draw visible debris; return their boxes (N, 4) x0, y0, x1, y1 in field px."""
    pos = debris.at(t)
    h, w = bright_layer.shape
    rel = pos - origin
    reach = debris.radii + 2
    visible = (
        (rel[:, 0] > -reach)
        & (rel[:, 0] < w + reach)
        & (rel[:, 1] > -reach)
        & (rel[:, 1] < h + reach)
    )
    for i in np.flatnonzero(visible):
        layer = bright_layer if debris.bright[i] else dark_layer
        center = tuple(int(v) for v in np.round(rel[i] * _SCALE))
        axes = tuple(int(v) for v in np.round(debris.axes[i] * _SCALE))
        if debris.radii[i] > 5:  # large debris: a ring, like a cell fragment
            cv2.ellipse(
                layer, center, axes, float(debris.angles[i]), 0, 360,
                int(debris.values[i]), 2, cv2.LINE_AA, _SHIFT,
            )  # fmt: skip
        else:
            cv2.ellipse(
                layer, center, axes, float(debris.angles[i]), 0, 360,
                int(debris.values[i]), -1, cv2.LINE_AA, _SHIFT,
            )  # fmt: skip
    r = debris.radii[:, None]
    return np.hstack([pos - r, pos + r])


# ---------------------------------------------------------------------- background
def make_background(
    height: int, width: int, *, rng: np.random.Generator, gradient: float = 18.0
) -> np.ndarray:
    """Static field: illumination gradient, vignetting and smooth texture (float32)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    span = max(height, width)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / span
    cy, cx = height / 2.0, width / 2.0
    vignette = ((xx - cx) ** 2 + (yy - cy) ** 2) / (span / 2.0) ** 2
    base = _BACKGROUND_LEVEL + rng.normal(0, 5) + gradient * (ramp - 0.5) - 8 * vignette
    coarse = rng.normal(0.0, 1.0, (max(2, height // 24), max(2, width // 24)))
    smooth = cv2.resize(
        coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
    )
    fine = cv2.GaussianBlur(
        rng.standard_normal((height, width), dtype=np.float32), (0, 0), 1.2
    )
    return (base + 3.5 * smooth + 3.0 * fine).astype(np.float32)


def compose_frame(
    background: np.ndarray,
    bright: np.ndarray,
    dark: np.ndarray,
    *,
    blur: float,
    noise_sigma: float,
    rng: np.random.Generator,
    polarity: str = "bright",
) -> np.ndarray:
    """Phase-contrast look, noise added; returns uint8 (H, W).

    ``polarity="bright"``: cells are bright with a dark halo (negative phase
    contrast, as many CASA systems show them); ``"dark"``: dark with a bright halo
    (positive phase contrast, like the SVIA videos).
    """
    sign = polarity_sign(polarity)
    # Defocus blurs and also lowers contrast.
    gain = sign / (1.0 + 0.35 * blur) / 255.0
    img = background.copy()
    if bright.any():
        core = cv2.GaussianBlur(bright, (0, 0), 0.6 + blur)
        halo = _wide_blur(bright, 2.8 + 1.5 * blur)
        img += (gain * _CORE_GAIN) * core.astype(np.float32)
        img -= (gain * _HALO_GAIN) * halo
    if dark.any():
        dark_gain = abs(gain)
        img -= (dark_gain * _DARK_GAIN) * cv2.GaussianBlur(
            dark, (0, 0), 0.7 + blur
        ).astype(np.float32)
        img += (dark_gain * 25.0) * _wide_blur(dark, 3.0 + blur)
    if noise_sigma > 0:
        # OpenCV's generator (thread-local), seeded from ours: twice as fast as
        # numpy's normal draws on full frames and still deterministic.
        noise = np.empty(img.shape, np.float32)
        cv2.setRNGSeed(int(rng.integers(2**31 - 1)))
        cv2.randn(noise, 0.0, float(noise_sigma))
        img += noise
    return np.clip(img, 0, 255).astype(np.uint8)


def _wide_blur(layer: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a uint8 layer as float32; at half resolution on big frames
    (the result is smooth anyway, and it is four times cheaper)."""
    h, w = layer.shape
    # float32: OpenCV's bit-exact uint8 path is slower for wide kernels.
    if min(h, w) < 256:
        return cv2.GaussianBlur(layer.astype(np.float32), (0, 0), sigma)
    small = cv2.resize(
        layer.astype(np.float32), (w // 2, h // 2), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma / 2.0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def polarity_sign(polarity: str) -> float:
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    return 1.0 if polarity == "bright" else -1.0


def focus_profile(
    n_frames: int, *, amplitude: float, rng: np.random.Generator
) -> np.ndarray:
    """Extra blur sigma per frame: a slow drift in and out of focus."""
    if amplitude <= 0:
        return np.zeros(n_frames)
    period = rng.uniform(1.5, 3.0) * max(n_frames, 2)
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(n_frames)
    return amplitude * np.sin(np.pi * t / period + phase) ** 2


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
