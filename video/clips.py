"""Cutting tracked single-sperm clips: T frames x S x S crops centred on a track.

Crops are centred on the rounded track position (no resampling, so the pixels are
the recording's own) and padded where the crop leaves the frame: ``"neutral"``
(the frame's median grey, default: never a mirrored "twin" sperm, no hard black
edge), ``"reflect"`` (mirror) or ``"constant"`` (``pad_value``). The result is
uint8 (T, S, S, 3); grey recordings are repeated to three channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from video.io import encode_mp4

DEFAULT_CLIP_FRAMES = 16
DEFAULT_CLIP_SIZE = 150
# Clips cover a fixed time span whatever the recording's frame rate: 16 frames at
# 15 fps, about 1.07 s of motion (the reference study's clips).
DEFAULT_CLIP_FPS = 15.0


def span_indices(
    source_fps: float,
    n_frames: int = DEFAULT_CLIP_FRAMES,
    clip_fps: float | None = DEFAULT_CLIP_FPS,
) -> np.ndarray:
    """Source-frame offsets of a clip's frames: frame i shows the source frame
    nearest to time i / clip_fps (ties to the later frame). A 30 fps source is
    taken every 2nd frame, 60 fps every 4th, 20 fps by nearest frame (0, 1, 3, 4,
    5, 7, ...), 15 fps frame by frame; ``clip_fps`` None keeps the source rate."""
    if source_fps <= 0:
        raise ValueError(f"source fps must be positive, got {source_fps}.")
    if clip_fps is None:
        return np.arange(n_frames)
    if clip_fps <= 0:
        raise ValueError(f"clip fps must be positive, got {clip_fps}.")
    return np.floor(np.arange(n_frames) * source_fps / clip_fps + 0.5).astype(int)


def span_source_frames(
    source_fps: float,
    n_frames: int = DEFAULT_CLIP_FRAMES,
    clip_fps: float | None = DEFAULT_CLIP_FPS,
) -> int:
    """How many consecutive source frames one clip covers (31 for 16 frames at
    15 fps from a 30 fps recording)."""
    return int(span_indices(source_fps, n_frames, clip_fps)[-1]) + 1


PadMode = Literal["neutral", "reflect", "constant"]


def crop_centred(
    frame: np.ndarray,
    *,
    centre: tuple[float, float],
    size: int = DEFAULT_CLIP_SIZE,
    pad: PadMode = "neutral",
    pad_value: int = 0,
) -> np.ndarray:
    """size x size crop of ``frame`` centred on ``centre`` (x, y), padded at borders.

    ``"neutral"`` (default) pads with the frame's median grey per channel: no
    mirrored "twin" sperm and no hard black edge; ``"reflect"`` mirrors (kept for
    comparison), ``"constant"`` uses ``pad_value``."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}.")
    if not np.all(np.isfinite(centre)):
        raise ValueError(f"centre must be finite, got {centre}.")
    h, w = frame.shape[:2]
    x0, y0 = crop_origin(centre, size)
    x1, y1 = x0 + size, y0 + size
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        # The crop misses the frame entirely: nothing to mirror.
        shape = (size, size) + frame.shape[2:]
        return np.full(shape, pad_value, dtype=frame.dtype)
    inner = frame[cy0:cy1, cx0:cx1]
    pads = [(cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1)] + [(0, 0)] * (frame.ndim - 2)
    if not any(p for pair in pads for p in pair):
        return inner.copy()
    if pad == "neutral":
        neutral = np.median(frame.reshape(-1, *frame.shape[2:]), axis=0)
        out = np.empty((size, size) + frame.shape[2:], dtype=frame.dtype)
        out[...] = np.round(neutral).astype(frame.dtype)
        top, left = pads[0][0], pads[1][0]
        out[top : top + inner.shape[0], left : left + inner.shape[1]] = inner
        return out
    if pad == "reflect":
        if inner.shape[0] < 2 or inner.shape[1] < 2:
            return np.pad(inner, pads, mode="edge")
        return np.pad(inner, pads, mode="reflect")
    if pad == "constant":
        return np.pad(inner, pads, mode="constant", constant_values=pad_value)
    raise ValueError(f"pad must be 'neutral', 'reflect' or 'constant', got {pad!r}.")


def crop_origin(centre: tuple[float, float], size: int) -> tuple[int, int]:
    """Top-left corner (x0, y0), in frame pixels, of the crop centred on ``centre``."""
    return (
        int(round(float(centre[0]))) - size // 2,
        int(round(float(centre[1]))) - size // 2,
    )


def marker_positions(track, size: int) -> list[list[float]] | None:
    """Where the tracked head lies in each frame of a clip cut around ``track``:
    (x, y) in clip pixels, i.e. the track point minus its crop's origin. None when
    the track is missing or has gaps (no point to mark)."""
    points = np.asarray(track if track is not None else [], dtype=np.float64)
    if points.size == 0 or points.ndim != 2 or points.shape[1] != 2:
        return None
    if not np.all(np.isfinite(points)):
        return None
    out = []
    for x, y in points:
        x0, y0 = crop_origin((x, y), size)
        out.append([round(float(x - x0), 2), round(float(y - y0), 2)])
    return out


def clip_cut(
    frames: Sequence[np.ndarray],
    *,
    track: np.ndarray,
    size: int = DEFAULT_CLIP_SIZE,
    pad: PadMode = "neutral",
    pad_value: int = 0,
) -> np.ndarray:
    """uint8 (T, S, S, 3) clip: frame t cropped around ``track[t]`` (x, y)."""
    track = np.asarray(track, dtype=np.float64).reshape(-1, 2)
    if len(frames) != len(track):
        raise ValueError(
            f"need one track point per frame: {len(frames)} frames, "
            f"{len(track)} points."
        )
    if len(frames) == 0:
        raise ValueError("no frames to cut a clip from.")
    if np.isnan(track).any():
        raise ValueError("the track has gaps (NaN); fill them before cutting.")
    crops = [
        crop_centred(f, centre=tuple(p), size=size, pad=pad, pad_value=pad_value)
        for f, p in zip(frames, track)
    ]
    clip = np.stack(crops)
    if clip.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {clip.dtype}.")
    if clip.ndim == 3:
        clip = np.repeat(clip[..., None], 3, axis=-1)
    elif clip.shape[-1] == 1:
        clip = np.repeat(clip, 3, axis=-1)
    return clip


@dataclass(frozen=True)
class CutClip:
    """A cut clip with its place in the recording."""

    frames: np.ndarray  # uint8 (T, S, S, 3)
    track: np.ndarray  # (T, 2) recording pixels
    frame_start: int
    fps: float  # the clip's own rate (what the mp4 plays and the model sees)
    source_fps: float | None = None  # the recording's; None = same as fps
    span: int | None = None  # source frames the clip covers (None = len(frames))

    @property
    def stride(self) -> float:
        """Source frames per clip frame (source_fps / fps)."""
        return self.source_fps / self.fps if self.source_fps else 1.0

    @property
    def frame_end(self) -> int:
        return self.frame_start + (self.span or len(self.frames)) - 1

    def mp4(self) -> bytes:
        """Browser-playable H.264 of the clip (see :func:`encode_mp4`)."""
        return encode_mp4(self.frames, fps=self.fps)
