"""Single-target tracker: template matching from a point clicked in the first frame.

This is the reference study's tracker. A square template around the clicked point
is searched for in each new frame with normalised cross-correlation
(``cv2.matchTemplate``, ``TM_CCOEFF_NORMED``) inside a window centred on a
constant-velocity prediction; the peak is refined to sub-pixel precision with a
parabola through its neighbours.

Template update: the template drifts with the cell's appearance (the head rotates,
the focus changes), so after each confident match (score >= ``update_min_score``)
it is blended towards the new patch, ``T <- (1 - rate) T + rate * patch``; the
first frame's template keeps a share (``anchor``) so accumulated error cannot
walk the template off the target. A match below ``lost_score`` is treated as a
miss: the position coasts on the prediction and the template is not updated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from video.detection import to_grey


@dataclass(frozen=True)
class TemplateConfig:
    template_px: int = 25
    search_px: int = 24
    update_rate: float = 0.2
    update_min_score: float = 0.6
    anchor: float = 0.3
    lost_score: float = 0.3
    velocity_smoothing: float = 0.5


@dataclass(frozen=True)
class TemplateTrack:
    points: np.ndarray  # (T, 2) float64 (x, y)
    scores: np.ndarray  # (T,) match score per frame (1.0 for the first frame)

    @property
    def lost(self) -> np.ndarray:
        return self.scores < 0


def _patch(image: np.ndarray, cx: float, cy: float, size: int) -> np.ndarray:
    """size x size float32 patch centred at (cx, cy), reflect-padded at borders."""
    return cv2.getRectSubPix(image, (size, size), (float(cx), float(cy)))


def _subpixel(values: np.ndarray, ix: int, iy: int) -> tuple[float, float]:
    def offset(m1: float, c: float, p1: float) -> float:
        denom = m1 - 2 * c + p1
        return (
            0.0
            if abs(denom) < 1e-9
            else float(np.clip(0.5 * (m1 - p1) / denom, -0.5, 0.5))
        )

    h, w = values.shape
    dx = (
        offset(values[iy, ix - 1], values[iy, ix], values[iy, ix + 1])
        if 0 < ix < w - 1
        else 0.0
    )
    dy = (
        offset(values[iy - 1, ix], values[iy, ix], values[iy + 1, ix])
        if 0 < iy < h - 1
        else 0.0
    )
    return dx, dy


class TemplateTracker:
    """Follow one target; call :meth:`update` with each following frame."""

    def __init__(
        self,
        first_frame: np.ndarray,
        *,
        point: tuple[float, float],
        config: TemplateConfig | None = None,
    ) -> None:
        self.config = config or TemplateConfig()
        size = self.config.template_px | 1
        self.size = size
        grey = to_grey(first_frame).astype(np.float32)
        h, w = grey.shape
        x, y = float(point[0]), float(point[1])
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(
                f"point ({x:.0f}, {y:.0f}) lies outside the {w}x{h} first frame."
            )
        self.position = np.array([x, y], dtype=np.float64)
        self.velocity = np.zeros(2)
        self.anchor_template = _patch(grey, x, y, size)
        self.template = self.anchor_template.copy()

    def update(self, frame: np.ndarray) -> tuple[float, float, float]:
        """Locate the target in ``frame``; returns (x, y, score), score -1 if lost."""
        cfg = self.config
        grey = to_grey(frame).astype(np.float32)
        predicted = self.position + self.velocity
        window = self.size + 2 * cfg.search_px
        search = _patch(grey, predicted[0], predicted[1], window)
        result = cv2.matchTemplate(search, self.template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (ix, iy) = cv2.minMaxLoc(result)
        if score < cfg.lost_score:
            self.position = predicted
            return float(predicted[0]), float(predicted[1]), -1.0
        dx, dy = _subpixel(result, ix, iy)
        # result index (cfg.search_px, cfg.search_px) means "no shift from prediction".
        new = predicted + np.array([ix + dx - cfg.search_px, iy + dy - cfg.search_px])
        a = cfg.velocity_smoothing
        self.velocity = a * self.velocity + (1 - a) * (new - self.position)
        self.position = new
        if score >= cfg.update_min_score and cfg.update_rate > 0:
            patch = _patch(grey, new[0], new[1], self.size)
            blended = (1 - cfg.update_rate) * self.template + cfg.update_rate * patch
            self.template = (
                (1 - cfg.anchor) * blended + cfg.anchor * self.anchor_template
            ).astype(np.float32)
        return float(new[0]), float(new[1]), float(score)


def track_template(
    frames: Iterable[np.ndarray],
    *,
    point: tuple[float, float],
    config: TemplateConfig | None = None,
    max_frames: int | None = None,
) -> TemplateTrack:
    """Track ``point`` (clicked in the first frame) through ``frames``."""
    iterator = iter(frames)
    try:
        first = next(iterator)
    except StopIteration as exc:
        raise ValueError("no frames to track in.") from exc
    tracker = TemplateTracker(first, point=point, config=config)
    points = [(float(point[0]), float(point[1]))]
    scores = [1.0]
    for frame in iterator:
        if max_frames is not None and len(points) >= max_frames:
            break
        x, y, score = tracker.update(frame)
        points.append((x, y))
        scores.append(score)
    return TemplateTrack(points=np.asarray(points), scores=np.asarray(scores))
