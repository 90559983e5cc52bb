"""Cutting tracked single-sperm clips: T frames x S x S crops centred on a track.

Crops are centred on the rounded track position (no resampling, so the pixels are
the recording's own) and padded where the crop leaves the frame: ``"neutral"``
(the frame's median grey, default: never a mirrored "twin" sperm, no hard black
edge), ``"reflect"`` (mirror) or ``"constant"`` (``pad_value``). The result is
uint8 (T, S, S, 3); grey recordings are repeated to three channels.

The median grey is whole-frame work (a histogram of every pixel), so it is done
once per frame, not once per crop: :class:`FrameGreys` remembers each frame's grey
for as long as the caller keeps the frame (the pipeline cuts several clips from
one ring buffer of frames).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
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
GreyOf = Callable[[np.ndarray], np.ndarray]

# calcHist counts in float32: exact up to 2**24 pixels per channel.
_HISTOGRAM_MAX_PIXELS = 2**24


def frame_grey(frame: np.ndarray, *, guess: np.ndarray | None = None) -> np.ndarray:
    """The frame's neutral padding grey: its median per channel, rounded (half to
    even) to the frame's dtype, shape ``frame.shape[2:]``. Equal to
    ``np.round(np.median(frame.reshape(-1, *frame.shape[2:]), axis=0))``.

    uint8 frames are not sorted (``np.median`` takes 28 ms on a 1392x976 frame):
    a ``guess`` (the previous frame's grey, which barely changes within a
    recording) is confirmed by counting the pixels below and above it, and a
    channel where it is not the median is read off its 256-bin histogram.
    """
    channels = frame.shape[2:]
    n_channels = frame.shape[2] if frame.ndim == 3 else 1
    pixels = frame.shape[0] * frame.shape[1] if frame.ndim >= 2 else 0
    if (
        frame.dtype != np.uint8
        or frame.ndim not in (2, 3)
        or not 0 < pixels <= _HISTOGRAM_MAX_PIXELS
        or n_channels > 4
    ):
        median = np.median(frame.reshape(-1, *channels), axis=0)
        return np.round(median).astype(frame.dtype)
    guesses = np.broadcast_to(guess, (n_channels,)) if guess is not None else None
    planes = cv2.split(np.ascontiguousarray(frame)) if guesses is not None else None
    grey = np.empty(n_channels, dtype=np.uint8)
    for c in range(n_channels):
        if guesses is not None and _is_median(planes[c], int(guesses[c])):
            grey[c] = guesses[c]
        else:
            grey[c] = _histogram_median(frame, c)
    return grey.reshape(channels)


def _middle_ranks(n: int) -> tuple[int, int]:
    """Ranks of the middle pair of n sorted values (one rank twice when n is odd):
    np.median averages them."""
    return (n - 1) // 2, n // 2


def _is_median(plane: np.ndarray, value: int) -> bool:
    """Whether both middle values of the uint8 ``plane`` equal ``value``: fewer
    pixels than the lower middle rank lie below it, and fewer than the rest lie
    above it. Two thresholded passes, no histogram."""
    low_rank, high_rank = _middle_ranks(plane.size)
    above = cv2.threshold(plane, value, 255, cv2.THRESH_BINARY)[1]
    at_or_above = cv2.threshold(plane, value - 1, 255, cv2.THRESH_BINARY)[1]
    below = plane.size - cv2.countNonZero(at_or_above)
    return below <= low_rank and plane.size - cv2.countNonZero(above) > high_rank


def _histogram_median(frame: np.ndarray, channel: int) -> int:
    """Median of one channel of a uint8 frame, rounded half to even, from its
    256-bin histogram."""
    counts = cv2.calcHist([frame], [channel], None, [256], [0, 256]).ravel()
    at_or_below = np.cumsum(counts.astype(np.int64))
    n = int(at_or_below[-1])
    low_rank, high_rank = _middle_ranks(n)
    low, high = np.searchsorted(at_or_below, [low_rank + 1, high_rank + 1])
    return int(np.round((low + high) / 2))


class FrameGreys:
    """:func:`frame_grey` of each frame, computed the first time a crop of that frame
    pads and kept until :meth:`forget` (call it when the frame leaves the caller's
    buffer). Pass an instance as ``grey`` to :func:`crop_centred` or
    :func:`clip_cut`. Frames are known by identity; each entry holds its frame, so
    an id cannot be reused by another frame while it is remembered. The last grey
    computed is the guess for the next frame."""

    def __init__(self) -> None:
        self._greys: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._last: np.ndarray | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        entry = self._greys.get(id(frame))
        if entry is None or entry[0] is not frame:
            guess = self._last
            if guess is not None and guess.shape != frame.shape[2:]:
                guess = None
            entry = (frame, frame_grey(frame, guess=guess))
            self._greys[id(frame)] = entry
            self._last = entry[1]
        return entry[1]

    def __len__(self) -> int:
        return len(self._greys)

    def forget(self, frame: np.ndarray) -> None:
        entry = self._greys.get(id(frame))
        if entry is not None and entry[0] is frame:
            del self._greys[id(frame)]


def crop_centred(
    frame: np.ndarray,
    *,
    centre: tuple[float, float],
    size: int = DEFAULT_CLIP_SIZE,
    pad: PadMode = "neutral",
    pad_value: int = 0,
    grey: GreyOf = frame_grey,
) -> np.ndarray:
    """size x size crop of ``frame`` centred on ``centre`` (x, y), padded at borders.

    ``"neutral"`` (default) pads with the frame's median grey per channel: no
    mirrored "twin" sperm and no hard black edge; ``"reflect"`` mirrors (kept for
    comparison), ``"constant"`` uses ``pad_value``. ``grey`` gives a frame's
    neutral grey and is called only when a neutral crop pads: a
    :class:`FrameGreys` computes it once per frame for many crops."""
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
        out = np.empty((size, size) + frame.shape[2:], dtype=frame.dtype)
        out[...] = grey(frame)
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
    grey: GreyOf | None = None,
) -> np.ndarray:
    """uint8 (T, S, S, 3) clip: frame t cropped around ``track[t]`` (x, y).

    ``grey``: a :class:`FrameGreys` shared by the clips cut from the same frames
    (each frame's padding grey is then computed once); a fresh one otherwise."""
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
    grey = grey if grey is not None else FrameGreys()
    crops = [
        crop_centred(
            f, centre=tuple(p), size=size, pad=pad, pad_value=pad_value, grey=grey
        )
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
