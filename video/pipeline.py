"""Whole-recording preprocessing: streamed detect -> track -> cut (pure, no Django).

Two modes, as in the platform:

- **automatic** (:func:`recording_process` without ``targets``): every frame is
  detected (:class:`~video.detection.BlobDetector` or any
  :class:`~video.detection.Detector`) and tracked
  (:class:`~video.tracking.MultiTracker`). As soon as a confirmed track has
  ``clip_frames`` consecutive frames that qualify (measured in at least
  ``min_measured_fraction`` of them, last frame measured, head at least
  ``edge_margin_px`` inside the field), its clip is cut from a ring buffer of the
  source frames one clip spans.
  Each track gives at most one clip; only the ``max_clips`` best-tracked are kept,
  in a bounded heap. Quality = measured fraction x (0.5 + 0.5 x mean detection
  score / ``score_reference``, capped at 1) x (0.75 + 0.25 x isolation), where
  isolation is the distance to the nearest other track over a third of the crop
  (capped at 1): a clip should show one cell. Memory is therefore the ring
  buffer + the kept clips + the active tracks, independent of the recording's
  length.
- **manual** (``targets``: points clicked on the first frame): each target is
  followed by the template-matching tracker over the first ``clip_frames`` frames;
  reading stops there.

Motion span: a clip is ``clip_frames`` frames at ``clip_fps`` (default 16 at
15 fps, about 1.07 s) whatever the recording's rate: the source frames nearest
to each clip frame's time are taken (``video.clips.span_indices``; a 30 fps
recording every 2nd frame, 20 fps by nearest frame), so the span of motion an
expert sees, and the model gets, is the same for every recording. The window
checks above run over all the source frames of that span.

A ``progress(frames_done, frames_per_s)`` callback is called every
``progress_every`` frames and at the end.
"""

from __future__ import annotations

import heapq
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from video.clips import (
    DEFAULT_CLIP_FPS,
    DEFAULT_CLIP_FRAMES,
    DEFAULT_CLIP_SIZE,
    CutClip,
    FrameGreys,
    PadMode,
    clip_cut,
    span_indices,
    span_source_frames,
)
from video.detection import BlobDetector, Detections, Detector, DetectorConfig
from video.io import iter_frames, probe
from video.kinematics import Kinematics, kinematics_compute
from video.motility import MotilityConfig, MotilityCounter
from video.template import TemplateConfig, TemplateTracker
from video.tracking import MultiTracker, Track, TrackerConfig

ProgressCallback = Callable[[int, float], None]


@dataclass(frozen=True)
class PipelineConfig:
    clip_frames: int = DEFAULT_CLIP_FRAMES
    # the clips' rate: a fixed span of clip_frames / clip_fps seconds whatever the
    # recording's rate (None keeps the recording's rate, clip_frames frames)
    clip_fps: float | None = DEFAULT_CLIP_FPS
    clip_size: int = DEFAULT_CLIP_SIZE
    max_clips: int = 10
    pad: PadMode = "neutral"
    min_measured_fraction: float = 0.85
    edge_margin_px: float = 10.0
    # manual mode: a target within this many px of the edge in most of its clip's
    # frames is not cut (its clip would be mostly padding)
    border_px: float = 5.0
    score_reference: float = 50.0
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    template: TemplateConfig = field(default_factory=TemplateConfig)
    encode_mp4: bool = True
    progress_every: int = 25

    def __post_init__(self) -> None:
        if self.clip_frames < 2:
            raise ValueError(f"clip_frames must be >= 2, got {self.clip_frames}.")
        if self.clip_size < 8:
            raise ValueError(f"clip_size must be >= 8, got {self.clip_size}.")
        if self.max_clips < 1:
            raise ValueError(f"max_clips must be >= 1, got {self.max_clips}.")


@dataclass(frozen=True)
class ClipResult:
    clip: CutClip
    track_id: int
    quality: float
    kinematics: Kinematics
    speed: float  # VCL, in kinematics.unit
    speed_unit: str
    video_bytes: bytes | None


@dataclass(frozen=True)
class PipelineResult:
    clips: list[ClipResult]
    n_frames: int
    seconds: float
    n_tracks: int
    # Recording-level motility (video.motility.motility_summary) of every
    # confirmed track, or in manual mode of the clicked cells.
    motility: dict = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        return self.n_frames / self.seconds if self.seconds > 0 else 0.0


def _finish_clip(
    cut: CutClip,
    *,
    track_id: int,
    quality: float,
    um_per_px: float | None,
    encode: bool,
) -> ClipResult:
    kin = kinematics_compute(track=cut.track, fps=cut.fps, um_per_px=um_per_px)
    return ClipResult(
        clip=cut,
        track_id=track_id,
        quality=quality,
        kinematics=kin,
        speed=kin.vcl,
        speed_unit=kin.unit,
        video_bytes=cut.mp4() if encode else None,
    )


class _Progress:
    def __init__(self, callback: ProgressCallback | None, every: int) -> None:
        self.callback, self.every = callback, max(1, every)
        self.start = time.perf_counter()
        self.done = 0

    def tick(self) -> None:
        self.done += 1
        if self.callback is not None and self.done % self.every == 0:
            self.callback(self.done, self.rate())

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def end(self) -> float:
        if self.callback is not None:
            self.callback(self.done, self.rate())
        return time.perf_counter() - self.start


def _window_quality(
    track: Track, *, n: int, width: int, height: int, config: PipelineConfig
) -> tuple[float, np.ndarray] | None:
    """Quality of the track's last ``n`` frames as a clip, or None if unusable."""
    measured = track.measured[-n:]
    if not measured[-1]:
        return None
    fraction = sum(measured) / n
    if fraction < config.min_measured_fraction:
        return None
    xy = np.asarray(track.points[-n:], dtype=np.float64)
    m = config.edge_margin_px
    inside = (
        (xy[:, 0] >= m)
        & (xy[:, 0] < width - m)
        & (xy[:, 1] >= m)
        & (xy[:, 1] < height - m)
    )
    if not inside.all():
        return None
    scores = [s for s, m in zip(track.scores[-n:], measured) if m]
    score = min(1.0, float(np.mean(scores)) / config.score_reference)
    return fraction * (0.5 + 0.5 * score), xy


def _cut(
    window: list[np.ndarray],
    xy: np.ndarray,
    offsets: np.ndarray,
    frame_start: int,
    fps: float,
    config: PipelineConfig,
    greys: FrameGreys,
) -> CutClip:
    """The clip of a window of source frames: the frames (and track points) at
    ``offsets``, so every clip spans the same time whatever the source rate.
    ``greys`` holds the window's padding greys, shared by every clip cut from it."""
    frames = [window[i] for i in offsets]
    track = np.asarray(xy, dtype=np.float64)[offsets]
    clip = clip_cut(
        frames, track=track, size=config.clip_size, pad=config.pad, grey=greys
    )
    clip_fps = config.clip_fps or fps
    return CutClip(
        frames=clip,
        track=track,
        frame_start=frame_start,
        fps=float(clip_fps),
        source_fps=float(fps),
        span=len(window),
    )


def recording_process(
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    um_per_px: float | None = None,
    config: PipelineConfig | None = None,
    detector: Detector | None = None,
    targets: Sequence[tuple[float, float]] | None = None,
    progress: ProgressCallback | None = None,
) -> PipelineResult:
    """Turn a stream of frames into tracked single-sperm clips (see module doc)."""
    config = config or PipelineConfig()
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}.")
    if targets:
        return _process_targets(
            frames,
            fps=fps,
            um_per_px=um_per_px,
            config=config,
            targets=targets,
            progress=progress,
        )
    if detector is None:
        detector_config = config.detector
        if um_per_px is not None and detector_config.um_per_px is None:
            detector_config = replace(detector_config, um_per_px=um_per_px)
        detector = BlobDetector(detector_config)
    offsets = span_indices(fps, config.clip_frames, config.clip_fps)
    n = span_source_frames(fps, config.clip_frames, config.clip_fps)
    buffer: deque[np.ndarray] = deque(maxlen=n)
    greys = FrameGreys()  # padding greys of the buffered frames, once per frame
    tracker: MultiTracker | None = None
    cut_ids: set[int] = set()
    kept: list[tuple[float, int, CutClip]] = []  # min-heap on quality
    counter = _Progress(progress, config.progress_every)
    motility = MotilityCounter(_motility_config(fps, um_per_px, config))
    n_tracks = 0
    frame_index = -1
    for frame_index, frame in enumerate(frames):
        if tracker is None:
            height, width = frame.shape[:2]
            tracker = MultiTracker(config.tracker, frame_size=(width, height))
        if len(buffer) == n:
            greys.forget(buffer[0])  # about to leave the ring buffer
        buffer.append(frame)
        detections: Detections = detector.detect(frame)
        active = tracker.update(detections)
        n_tracks += _count_motility(motility, tracker.pop_finished())
        if len(buffer) == n:
            positions = np.array([tr.points[-1] for tr in active]).reshape(-1, 2)
            for position_index, track in enumerate(active):
                if track.id in cut_ids or len(track) < n:
                    continue
                judged = _window_quality(
                    track, n=n, width=width, height=height, config=config
                )
                if judged is None:
                    continue
                quality, xy = judged
                # A second cell inside the crop distracts the graders: prefer
                # isolated cells (nearest other track vs a third of the crop).
                others = np.delete(positions, position_index, axis=0)
                if len(others):
                    nearest = float(np.min(np.linalg.norm(others - xy[-1], axis=1)))
                    isolation = min(1.0, nearest / (config.clip_size / 3))
                    quality *= 0.75 + 0.25 * isolation
                if len(kept) >= config.max_clips and quality <= kept[0][0]:
                    continue
                cut_ids.add(track.id)
                start = frame_index - n + 1
                cut = _cut(list(buffer), xy, offsets, start, fps, config, greys)
                item = (quality, track.id, cut)
                if len(kept) < config.max_clips:
                    heapq.heappush(kept, item)
                else:
                    heapq.heapreplace(kept, item)
        counter.tick()
    if tracker is not None:
        n_tracks += _count_motility(motility, tracker.finish())
    seconds = counter.end()
    results = [
        _finish_clip(
            cut,
            track_id=track_id,
            quality=quality,
            um_per_px=um_per_px,
            encode=config.encode_mp4,
        )
        for quality, track_id, cut in sorted(kept, key=lambda k: (-k[0], k[1]))
    ]
    return PipelineResult(
        clips=results,
        n_frames=frame_index + 1,
        seconds=seconds,
        n_tracks=n_tracks,
        motility=motility.summary(),
    )


def _motility_config(
    fps: float, um_per_px: float | None, config: PipelineConfig
) -> MotilityConfig:
    return MotilityConfig(
        fps=fps,
        um_per_px=um_per_px,
        clip_frames=config.clip_frames,
        clip_fps=config.clip_fps,
        min_measured_fraction=config.min_measured_fraction,
    )


def _count_motility(motility: MotilityCounter, tracks) -> int:
    """Feed finished tracks to the motility counter; returns how many."""
    for track in tracks:
        motility.add(track.xy(), np.asarray(track.measured, dtype=bool))
    return len(tracks)


def _process_targets(
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    um_per_px: float | None,
    config: PipelineConfig,
    targets: Sequence[tuple[float, float]],
    progress: ProgressCallback | None,
) -> PipelineResult:
    offsets = span_indices(fps, config.clip_frames, config.clip_fps)
    n = span_source_frames(fps, config.clip_frames, config.clip_fps)
    counter = _Progress(progress, config.progress_every)
    window: list[np.ndarray] = []
    trackers: list[TemplateTracker] = []
    paths: list[list[tuple[float, float]]] = []
    for frame in frames:
        if not trackers:
            for point in targets:
                trackers.append(
                    TemplateTracker(frame, point=point, config=config.template)
                )
                paths.append([(float(point[0]), float(point[1]))])
        else:
            for tracker, path in zip(trackers, paths):
                x, y, _ = tracker.update(frame)
                path.append((x, y))
        window.append(frame)
        counter.tick()
        if len(window) == n:
            break
    if len(window) < n:
        raise ValueError(
            f"the recording has {len(window)} frames; a clip of "
            f"{config.clip_frames} frames at {config.clip_fps or fps:g} fps needs "
            f"{n} at its {fps:g} fps. Upload a longer recording or lower the clip "
            "length."
        )
    seconds = counter.end()
    results = []
    greys = FrameGreys()
    height, width = window[0].shape[:2]
    for i, path in enumerate(paths):
        xy = np.asarray(path, dtype=np.float64)
        m = config.border_px
        at_border = (
            (xy[:, 0] < m) | (xy[:, 0] >= width - m) | (xy[:, 1] < m)
            | (xy[:, 1] >= height - m)
        )  # fmt: skip
        if at_border.mean() > 0.5:
            continue
        cut = _cut(window, xy, offsets, 0, fps, config, greys)
        results.append(
            _finish_clip(
                cut,
                track_id=i + 1,
                quality=1.0,
                um_per_px=um_per_px,
                encode=config.encode_mp4,
            )
        )
    if not results:
        raise ValueError(
            f"Every chosen sperm stays within {config.border_px:g} px of the frame's "
            "edge for most of the clip, so its clip would show mostly padding. "
            "Choose sperm further inside the field."
        )
    motility = MotilityCounter(
        _motility_config(fps, um_per_px, config),
        source=f"the {len(paths)} clicked cells (manual mode)",
    )
    for path in paths:
        motility.add(np.asarray(path, dtype=np.float64))
    return PipelineResult(
        clips=results,
        n_frames=len(window),
        seconds=seconds,
        n_tracks=len(paths),
        motility=motility.summary(),
    )


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def frames_prefetched(
    frames: Iterable[np.ndarray], *, depth: int = 4
) -> Iterator[np.ndarray]:
    """Read ``frames`` ahead in a background thread, at most ``depth`` frames ahead.

    PyAV decoding and OpenCV release the GIL, so on a machine with two or more
    cores decoding overlaps with detection (on one core it changes nothing).
    Errors from the reader (e.g. a :class:`~video.io.CorruptVideo`) are
    raised here, in order, after the frames read before them.
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        iterator = iter(frames)
        try:
            for frame in iterator:
                if not put(frame):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, re-raised there
            put(_Failure(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="frame-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def recording_process_file(
    path: str | os.PathLike,
    *,
    um_per_px: float | None = None,
    fps: float | None = None,
    config: PipelineConfig | None = None,
    targets: Sequence[tuple[float, float]] | None = None,
    progress: ProgressCallback | None = None,
    prefetch: int = 4,
) -> PipelineResult:
    """:func:`recording_process` on a video file (probed first: bad input raises a
    :class:`~video.io.VideoError`). ``fps`` overrides the container's rate.
    ``prefetch`` frames are decoded ahead in a thread (0: no thread).
    """
    info = probe(path)
    rate = fps if fps is not None else info.fps
    if not rate or rate <= 0:
        raise ValueError(
            "the video states no frame rate; give the recording's fps explicitly."
        )
    frames = iter_frames(path)
    if prefetch > 0:
        frames = frames_prefetched(frames, depth=prefetch)
    return recording_process(
        frames,
        fps=rate,
        um_per_px=um_per_px,
        config=config,
        targets=targets,
        progress=progress,
    )


def first_frame_detections(
    path: str | os.PathLike, *, config: DetectorConfig | None = None
) -> tuple[np.ndarray, Detections]:
    """The first frame (RGB) and its detections, for drawing click targets."""
    probe(path)
    frame = next(iter(iter_frames(path)))
    return frame, BlobDetector(config).detect(frame)
