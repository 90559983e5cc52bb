"""Synthetic phase-contrast sperm videos with known ground truth (pure numpy/OpenCV).

One renderer draws both the demo's tracked single-sperm clips (``render_clip``) and
full-field recordings with many cells (``render_recording``), so the clips the demo
shows and the recordings the tracker is tested on look alike.

A cell's latent quality ``q`` in [0, 1] drives two observable factors that are drawn
around it, ``q_motion`` and ``q_shape`` (their mean is ``q`` unless clipped), so
neither the motion nor the shape alone tells the whole quality:

- motion: progressive speed (from ``q_speed``), and path curvature (low quality
  circles), head wobble, beat frequency and amplitude of the travelling flagellar
  wave (from ``q_path``); the two scatter around ``q_motion``, so the speed figure
  alone does not give the whole motion. Below about 0.15 the cell is immotile
  (Brownian jitter only);
- shape: head size, elongation (tapered) or roundness, pyriform taper, amorphous
  outline, bent midpiece, short or coiled tail.

The picture: a grey background with a slow illumination gradient and static
texture, a bright head with a dark halo, a brighter midpiece, a thin tapering tail,
round or irregular debris (static or drifting; bright or dark), sensor noise and an
optional focus drift (blur that varies over time). ``polarity="dark"`` gives the
positive phase-contrast look instead (dark heads, bright halo, like the SVIA
videos). Beat frequencies stay below the Nyquist limit of 15 fps so the wave reads
as motion rather than aliasing.

Everything here is synthetic and says so: ``metadata["synthetic"]`` is ``True``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from video.synthetic_scene import (  # noqa: F401
    UM_PER_PX,
    Cell,
    Debris,
    cell_outlines,
    compose_frame,
    draw_cell,
    draw_debris,
    focus_profile,
    gray_to_rgb,
    make_background,
    make_cell,
    make_debris,
    polarity_sign,
)


# --------------------------------------------------------------------------- clips
@dataclass
class SyntheticClip:
    """One tracked single-sperm clip; the crop follows the target's head."""

    frames: np.ndarray  # uint8 (T, S, S, 3)
    track: np.ndarray  # (T, 2) head centre in clip pixels (x, y)
    speed_px_s: float  # curvilinear speed of the head track (VCL), px/s
    shape_defect: float  # 0 = normal shape .. 1 = severe defects
    params: dict  # latent quality, motion and shape parameters
    field_track: np.ndarray  # (T, 2) head centre in the (virtual) field, px
    fps: float = 15.0
    metadata: dict = field(default_factory=lambda: {"synthetic": True})


def track_speed(track: np.ndarray, fps: float) -> float:
    """Curvilinear speed (mean step length times fps) of a (T, 2) track."""
    if len(track) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(track, axis=0), axis=1).mean() * fps)


def render_clip(
    *,
    quality: float,
    rng: np.random.Generator,
    n_frames: int = 16,
    size: int = 150,
    fps: float = 15.0,
    n_debris: int | None = None,
    focus_drift: float | None = None,
    other_cells: int | None = None,
    noise_sigma: float | None = None,
    polarity: str = "bright",
) -> SyntheticClip:
    """Render one tracked clip of a cell of latent ``quality`` in [0, 1].

    The S x S crop is centred on the head's rounded position in every frame, as a
    template-matching tracker would do, so the background and debris move while
    the cell stays near the centre.
    """
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality must lie in [0, 1], got {quality}")
    if n_frames < 1 or size < 16 or fps <= 0:
        raise ValueError("need n_frames >= 1, size >= 16 and fps > 0")
    polarity_sign(polarity)
    cell = make_cell(quality=quality, rng=rng, n_frames=n_frames, fps=fps, start=(0, 0))
    centers = cell.path.centers
    origins = np.round(centers).astype(int) - size // 2
    low = origins.min(axis=0) - size // 2
    high = origins.max(axis=0) + size + size // 2
    field_w, field_h = (high - low).tolist()
    background = make_background(field_h, field_w, rng=rng, gradient=6.0)

    if n_debris is None:
        n_debris = int(rng.poisson(field_w * field_h / 4500.0))
    debris = make_debris(n_debris, low=low, high=high, rng=rng)
    cells = [cell]
    if other_cells is None:
        other_cells = int(rng.random() < 0.25)
    for _ in range(other_cells):
        start = centers[0] + rng.uniform(-0.6 * size, 0.6 * size, 2)
        cells.insert(
            0,
            make_cell(
                quality=float(rng.uniform(0, 1)),
                rng=rng,
                n_frames=n_frames,
                fps=fps,
                start=tuple(start),
            ),
        )
    if focus_drift is None:
        focus_drift = float(rng.choice([0.0, rng.uniform(0.3, 1.2)], p=[0.6, 0.4]))
    blur = focus_profile(n_frames, amplitude=focus_drift, rng=rng)
    if noise_sigma is None:
        noise_sigma = float(rng.uniform(2.5, 5.0))

    frames = np.empty((n_frames, size, size, 3), np.uint8)
    bright = np.zeros((size, size), np.uint8)
    dark = np.zeros((size, size), np.uint8)
    for t in range(n_frames):
        origin = origins[t]
        bright.fill(0)
        dark.fill(0)
        draw_debris(bright, dark, debris, t, origin)
        for c in cells:
            draw_cell(bright, c, t, origin)
        ox, oy = origin - low
        bg = background[oy : oy + size, ox : ox + size]
        gray = compose_frame(
            bg,
            bright,
            dark,
            blur=float(blur[t]),
            noise_sigma=noise_sigma,
            rng=rng,
            polarity=polarity,
        )
        frames[t] = gray_to_rgb(gray)
    track = centers - origins
    params = dict(cell.info)
    params.update(
        {
            "fps": fps,
            "size": size,
            "n_frames": n_frames,
            "um_per_px": UM_PER_PX,
            "focus_drift": focus_drift,
            "noise_sigma": noise_sigma,
            "n_debris": n_debris,
            "other_cells": other_cells,
            "polarity": polarity,
            "synthetic": True,
        }
    )
    return SyntheticClip(
        frames=frames,
        track=track,
        speed_px_s=track_speed(centers, fps),
        shape_defect=float(cell.info["shape_defect"]),
        params=params,
        field_track=centers,
        fps=fps,
    )


# ---------------------------------------------------------------------- recordings
@dataclass
class SyntheticRecording:
    """A full-field recording with ground truth; frames are rendered on demand.

    ``iter_frames()`` renders frame after frame (memory stays bounded for long
    recordings) and gives the same frames on every call.
    """

    width: int
    height: int
    fps: float
    n_frames: int
    tracks: dict[int, np.ndarray]  # id -> (T, 2) head centre, NaN outside the field
    # Boxes in continuous pixel coordinates, clipped to [0, width] x [0, height].
    boxes: list[np.ndarray]  # per frame (k, 5): id, x0, y0, x1, y1 of visible heads
    debris_boxes: list[np.ndarray]  # per frame (k, 4) x0, y0, x1, y1 of debris
    qualities: dict[int, float]
    cells: dict[int, Cell]
    params: dict
    metadata: dict = field(default_factory=lambda: {"synthetic": True})
    _debris: Debris | None = None
    _background: np.ndarray | None = None
    _blur: np.ndarray | None = None
    _noise_seed: int = 0

    def iter_frames(self, *, gray: bool = False) -> Iterator[np.ndarray]:
        """Yield uint8 frames (H, W, 3), or (H, W) with ``gray=True``."""
        rng = np.random.default_rng(self._noise_seed)
        origin = np.zeros(2)
        bright = np.zeros((self.height, self.width), np.uint8)
        dark = np.zeros_like(bright)
        for t in range(self.n_frames):
            bright.fill(0)
            dark.fill(0)
            if self._debris is not None:
                draw_debris(bright, dark, self._debris, t, origin)
            for cell in self.cells.values():
                if _cell_near_view(cell, t, self.width, self.height):
                    draw_cell(bright, cell, t, origin)
            frame = compose_frame(
                self._background,
                bright,
                dark,
                blur=float(self._blur[t]),
                noise_sigma=self.params["noise_sigma"],
                rng=rng,
                polarity=self.params["polarity"],
            )
            yield frame if gray else gray_to_rgb(frame)

    def frames(self) -> np.ndarray:
        """All frames as one uint8 array (T, H, W, 3); for short recordings."""
        return np.stack(list(self.iter_frames()))

    def match_track(
        self, track: np.ndarray, *, frame_start: int = 0, max_error_px: float = 8.0
    ) -> tuple[int | None, float]:
        """The true cell a measured track follows: (cell id, median error in px).

        ``track`` is (T, 2) from ``frame_start`` on (NaN where unmeasured). The id is
        None when no cell stays within ``max_error_px`` (median) of it, so clips cut
        from a synthetic recording can be given their cell's latent quality.
        """
        track = np.asarray(track, dtype=float).reshape(-1, 2)
        stop = frame_start + len(track)
        if frame_start < 0 or stop > self.n_frames:
            raise ValueError(
                f"frames {frame_start}..{stop - 1} lie outside the recording "
                f"(0..{self.n_frames - 1})"
            )
        best_id, best_err = None, float("inf")
        for cell_id, cell in self.cells.items():
            diff = cell.path.centers[frame_start:stop] - track
            dist = np.linalg.norm(diff, axis=1)
            dist = dist[~np.isnan(dist)]
            if len(dist) == 0:
                continue
            err = float(np.median(dist))
            if err < best_err:
                best_id, best_err = cell_id, err
        if best_err > max_error_px:
            return None, best_err
        return best_id, best_err


def _cell_near_view(cell: Cell, t: int, width: int, height: int) -> bool:
    x, y = cell.path.centers[t]
    reach = cell.shape.midpiece_length + cell.shape.tail_length + cell.shape.head_length
    return -reach < x < width + reach and -reach < y < height + reach


def render_recording(
    *,
    n_sperm: int,
    n_frames: int,
    width: int,
    height: int,
    fps: float,
    rng: np.random.Generator,
    n_debris: int = 40,
    qualities: np.ndarray | None = None,
    focus_drift: float = 0.0,
    noise_sigma: float = 3.5,
    margin: int = 60,
    polarity: str = "bright",
) -> SyntheticRecording:
    """Simulate a full field of ``n_sperm`` cells; paths and truth are computed now.

    Cells start anywhere in the field enlarged by ``margin`` px, so some enter and
    leave the view; they may cross each other. Tracks are NaN while the head centre
    is outside the frame.
    """
    if n_sperm < 0 or n_frames < 1 or width < 16 or height < 16 or fps <= 0:
        raise ValueError("need n_sperm >= 0, n_frames >= 1, a frame >= 16 px, fps > 0")
    polarity_sign(polarity)
    if qualities is None:
        qualities = rng.beta(2.0, 1.6, n_sperm)
    qualities = np.asarray(qualities, dtype=float)
    if qualities.shape != (n_sperm,):
        raise ValueError(f"qualities must have shape ({n_sperm},)")
    low = np.array([-margin, -margin], float)
    high = np.array([width + margin, height + margin], float)
    cells: dict[int, Cell] = {}
    for i, q in enumerate(qualities):
        start = rng.uniform(low, high)
        cells[i + 1] = make_cell(
            quality=float(q), rng=rng, n_frames=n_frames, fps=fps, start=tuple(start)
        )
    tracks: dict[int, np.ndarray] = {}
    boxes: list[list] = [[] for _ in range(n_frames)]
    for cell_id, cell in cells.items():
        c = cell.path.centers.copy()
        inside = (
            (c[:, 0] >= 0) & (c[:, 0] < width) & (c[:, 1] >= 0) & (c[:, 1] < height)
        )
        c[~inside] = np.nan
        tracks[cell_id] = c
        heads = cell_outlines(cell).heads  # (T, K, 2)
        low_corner = np.maximum(heads.min(axis=1), 0)
        high_corner = np.minimum(heads.max(axis=1), [width, height])
        for t in np.flatnonzero(inside):
            boxes[t].append([cell_id, *low_corner[t], *high_corner[t]])
    debris = make_debris(n_debris, low=low, high=high, rng=rng)
    debris_boxes = []
    for t in range(n_frames):
        b = np.hstack(
            [debris.at(t) - debris.radii[:, None], debris.at(t) + debris.radii[:, None]]
        )
        centre = debris.at(t)
        inside = (
            (centre[:, 0] >= 0)
            & (centre[:, 0] < width)
            & (centre[:, 1] >= 0)
            & (centre[:, 1] < height)
        )
        b = b[inside]
        b[:, [0, 1]] = np.maximum(b[:, [0, 1]], 0)
        b[:, [2, 3]] = np.minimum(b[:, [2, 3]], [width, height])
        debris_boxes.append(b)
    background = make_background(height, width, rng=rng)
    blur = focus_profile(n_frames, amplitude=focus_drift, rng=rng)
    params = {
        "n_sperm": n_sperm,
        "n_debris": n_debris,
        "focus_drift": focus_drift,
        "noise_sigma": noise_sigma,
        "margin": margin,
        "polarity": polarity,
        "um_per_px": UM_PER_PX,
        "synthetic": True,
    }
    return SyntheticRecording(
        width=width,
        height=height,
        fps=fps,
        n_frames=n_frames,
        tracks=tracks,
        boxes=[np.array(b, float).reshape(-1, 5) for b in boxes],
        debris_boxes=debris_boxes,
        qualities={i: cells[i].quality for i in cells},
        cells=cells,
        params=params,
        _debris=debris,
        _background=background,
        _blur=blur,
        _noise_seed=int(rng.integers(2**63)),
    )
