"""Sperm-head detection: a documented interface and a classical OpenCV detector.

Interface
---------
Any detector is an object with ``detect(frame) -> Detections`` (:class:`Detector`).
``frame`` is uint8 (H, W) grey or (H, W, 3) RGB; the result holds xyxy boxes in the
frame's pixels, their centres and a score (higher = more confident). A learned
detector (e.g. a YOLO model trained on VISEM-Tracking labels) only has to return the
same :class:`Detections` to replace :class:`BlobDetector` in the tracker and pipeline.

Classical detector (:class:`BlobDetector`)
-----------------------------------------
1. grey, downscaled by an integer factor so that a head spans about
   ``work_head_px`` pixels (speed: the cost of everything after this step falls with
   the square of the factor);
2. background removal and blob response in one step: a difference of Gaussians
   tuned to the head's width. It is a band-pass: slow shading (uneven illumination,
   focus drift: the background estimate) and pixel noise are removed, head-sized
   blobs kept. Heads are darker than the background in the bright-field and
   phase-contrast videos here (``polarity="dark"``); ``"bright"`` suits optics
   with bright heads (and the synthetic renderer), ``"both"`` either;
4. threshold at ``threshold_sigma`` robust noise sigmas (median absolute deviation of
   the response), connected components;
5. size and shape filters from the head's physical size and ``um_per_px``: area
   between ``min_area_frac`` and ``max_area_frac`` of the expected head area, and an
   elongation (major/minor axis) below ``max_elongation``. Small dots (debris,
   bacteria), big round cells and long streaks (tails, scratches) are rejected;
6. score = the component's integrated response ("mass") / (noise sigma x expected
   head area), times a size-likeness factor exp(-log(area/expected)^2 / 2). Mass
   ranks real heads above small high-contrast debris dots far better than the peak
   response does (SVIA AP@0.5 0.68 vs 0.44 at equal settings).

Defaults were chosen by a coarse global grid on the three developer SVIA videos
(benchmarks/detection.py), never per frame: ``threshold_sigma=12``, boxes the size
of the component clipped to [1, 2] head lengths, ``score_threshold=25`` (the
operating point for tracking; about P 0.79 / R 0.87 there). For the DeepSperm bull
frames (a different magnification) the benchmark uses ``head_length_px=24,
threshold_sigma=6, box_scale=1.3, min_box_frac=1.3``.

Head size: the WHO manual gives a normal head of about 4-5 um x 2.5-3.5 um. With
``um_per_px`` known, the expected head length in pixels is ``head_length_um /
um_per_px``; otherwise ``head_length_px`` is used directly (default 12 px, typical
for 40x objectives recorded at ~0.5 um/px, and used for the SVIA videos).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import cv2
import numpy as np


@dataclass(frozen=True)
class Detections:
    """Detections in one frame. ``boxes`` xyxy float32 (N, 4), ``scores`` (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    areas: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f"boxes must be (N, 4) xyxy, got {self.boxes.shape}.")
        if self.scores.shape != (len(self.boxes),):
            raise ValueError(
                f"scores must be ({len(self.boxes)},), got {self.scores.shape}."
            )

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def centres(self) -> np.ndarray:
        """(N, 2) float32 box centres (x, y)."""
        return np.stack(
            [
                (self.boxes[:, 0] + self.boxes[:, 2]) / 2,
                (self.boxes[:, 1] + self.boxes[:, 3]) / 2,
            ],
            axis=1,
        ).astype(np.float32)

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            areas=np.zeros(0, np.float32),
        )

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        areas = self.areas[keep] if len(self.areas) == len(self) else self.areas
        return Detections(boxes=self.boxes[keep], scores=self.scores[keep], areas=areas)


class Detector(Protocol):
    """What the tracker and pipeline need from a detector."""

    def detect(self, frame: np.ndarray) -> Detections: ...


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of :class:`BlobDetector`; physical sizes in micrometres.

    ``head_length_px`` is used when ``um_per_px`` is None.
    """

    um_per_px: float | None = None
    head_length_um: float = 4.5
    head_width_um: float = 3.0
    head_length_px: float = 12.0
    polarity: Literal["dark", "bright", "both"] = "dark"
    work_head_px: float = 4.0
    threshold_sigma: float = 12.0
    min_area_frac: float = 0.2
    max_area_frac: float = 4.0
    max_elongation: float = 4.0
    box_scale: float = 1.0
    min_box_frac: float = 1.0
    max_box_frac: float = 2.0
    size_weight: float = 1.0
    score_mode: Literal["peak", "mass"] = "mass"
    score_threshold: float = 25.0
    interpolation: int = cv2.INTER_LINEAR

    def head_px(self) -> float:
        if self.um_per_px is not None:
            if self.um_per_px <= 0:
                raise ValueError(f"um_per_px must be positive, got {self.um_per_px}.")
            return self.head_length_um / self.um_per_px
        return self.head_length_px

    def head_width_px(self) -> float:
        return self.head_px() * self.head_width_um / self.head_length_um


def to_grey(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W) grey from (H, W), (H, W, 1) or (H, W, 3) RGB."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[..., 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"frame must be (H, W) or (H, W, 3), got shape {frame.shape}.")


def _median(values: np.ndarray) -> float:
    k = len(values) // 2
    return float(np.partition(values, k)[k])


class BlobDetector:
    """Classical difference-of-Gaussians head detector with size/shape filters."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        head = self.config.head_px()
        # An integer factor lets cv2.resize(INTER_AREA) take its fast block-mean path.
        self.factor = max(1, int(round(head / self.config.work_head_px)))
        self.scale = 1.0 / self.factor
        self.work_head = head * self.scale
        work_width = self.config.head_width_px() * self.scale
        # DoG sigmas: the inner one matches the head's half-width, the outer one is
        # ~2x larger. The DoG is a band-pass: it removes slow shading (the
        # background) and pixel noise in one step.
        self.sigma_inner = max(0.6, work_width / 2.8)
        self.sigma_outer = self.sigma_inner * 2.2
        self.expected_area = math.pi / 4 * self.work_head * work_width

    def response(self, frame: np.ndarray) -> np.ndarray:
        """Float32 blob response at working scale (positive where a head is)."""
        f = self.factor
        if f > 1:
            # Downscale before the colour conversion: converting the small image is
            # cheaper than converting the full frame.
            h, w = (frame.shape[0] // f) * f, (frame.shape[1] // f) * f
            frame = cv2.resize(
                frame[:h, :w],
                (w // f, h // f),
                interpolation=self.config.interpolation,
            )
        grey = to_grey(frame)
        img = grey.astype(np.float32)
        inner = cv2.GaussianBlur(img, (0, 0), self.sigma_inner)
        outer = cv2.GaussianBlur(img, (0, 0), self.sigma_outer)
        if self.config.polarity == "dark":
            return outer - inner
        if self.config.polarity == "bright":
            return inner - outer
        return np.abs(inner - outer)

    def detect(self, frame: np.ndarray) -> Detections:
        config = self.config
        response = self.response(frame)
        # Robust noise level: the median absolute deviation of the response.
        sample = response[::7, ::7].ravel()
        median = _median(sample)
        sigma = 1.4826 * _median(np.abs(sample - median)) + 1e-6
        mask = (response > median + config.threshold_sigma * sigma).astype(np.uint8)
        # 16-bit labels are ~3x faster than 32-bit; safe while the foreground has
        # fewer pixels than a 16-bit label can count.
        ltype = cv2.CV_16U if cv2.countNonZero(mask) < 65535 else cv2.CV_32S
        n, labels, stats, centroids = cv2.connectedComponentsWithStatsWithAlgorithm(
            mask, 8, ltype, cv2.CCL_SPAGHETTI
        )
        if n <= 1:
            return Detections.empty()
        area = stats[1:, cv2.CC_STAT_AREA].astype(np.float32)
        w = stats[1:, cv2.CC_STAT_WIDTH].astype(np.float32)
        h = stats[1:, cv2.CC_STAT_HEIGHT].astype(np.float32)
        elongation = np.maximum(w, h) / np.maximum(np.minimum(w, h), 1.0)
        keep = (
            (area >= config.min_area_frac * self.expected_area)
            & (area <= config.max_area_frac * self.expected_area)
            & (elongation <= config.max_elongation)
        )
        if not keep.any():
            return Detections.empty()
        idx = np.flatnonzero(keep)
        if config.score_mode == "mass":
            # Integrated response per component from an integral image of the
            # masked response over its bounding box (vectorised; a neighbour
            # inside the same box adds to it, which only raises crowded scores).
            integral = cv2.integral(
                cv2.multiply(response, mask, dtype=cv2.CV_32F), sdepth=cv2.CV_64F
            )
            x0 = stats[1:, cv2.CC_STAT_LEFT][idx]
            y0 = stats[1:, cv2.CC_STAT_TOP][idx]
            x1, y1 = x0 + w[idx].astype(int), y0 + h[idx].astype(int)
            box_sum = (
                integral[y1, x1]
                - integral[y0, x1]
                - integral[y1, x0]
                + integral[y0, x0]
            )
            mass = box_sum - median * area[idx]
            base = mass / (sigma * self.expected_area)
        else:
            on = np.flatnonzero(mask)
            peak = np.zeros(n, np.float64)
            np.maximum.at(peak, labels.ravel()[on], response.ravel()[on] - median)
            base = peak[1:][idx] / sigma
        size_like = np.exp(-0.5 * np.log(area[idx] / self.expected_area) ** 2)
        scores = base * size_like**config.size_weight
        # Boxes: the component's extent, clipped to [min, max] head lengths.
        cx, cy = centroids[1:][idx, 0], centroids[1:][idx, 1]
        lo = config.min_box_frac * self.work_head
        hi = config.max_box_frac * self.work_head
        bw = np.clip(w[idx] * config.box_scale, lo, hi)
        bh = np.clip(h[idx] * config.box_scale, lo, hi)
        f = float(self.factor)
        # Working pixel i covers input pixels [i f, (i + 1) f).
        cx, cy = (cx + 0.5) * f - 0.5, (cy + 0.5) * f - 0.5
        boxes = np.stack(
            [cx - bw * f / 2, cy - bh * f / 2, cx + bw * f / 2, cy + bh * f / 2],
            axis=1,
        ).astype(np.float32)
        order = np.argsort(-scores)
        detections = Detections(
            boxes=boxes[order],
            scores=scores[order].astype(np.float32),
            areas=(area[idx] * f * f)[order].astype(np.float32),
        )
        return detections.above(config.score_threshold)


# Per-dataset settings (a scale and optics each, chosen once per dataset on the
# developer data by a coarse grid, never per frame; see benchmarks/detection.py).
DETECTOR_PRESETS: dict[str, DetectorConfig] = {
    # SVIA / MIaMIA human videos, 698x528, dark heads ~12 px long.
    "svia": DetectorConfig(),
    # DeepSperm bull frames, 640x480 at 500x, dark heads ~24 px long, dense field.
    "deepsperm": DetectorConfig(
        head_length_px=24.0,
        threshold_sigma=4.5,
        box_scale=1.3,
        min_box_frac=1.3,
        score_threshold=2.0,
    ),
    # video.synthetic renderer: bright heads ~11 px long at 0.5 um/px.
    "synthetic": DetectorConfig(
        polarity="bright",
        um_per_px=0.5,
        head_length_um=5.5,
        head_width_um=3.4,
        score_threshold=2.0,
    ),
}
