"""Video decoding, probing and browser-playable H.264 encoding (pure, no Django).

Decoding streams frame by frame through PyAV (FFmpeg), with OpenCV as a fallback for
files PyAV cannot open. Every problem a user can meet raises a subclass of
:class:`VideoError` whose message says what went wrong and what to do, so the platform
can turn it into a recording's error state.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

MAX_PIXELS = 4096 * 4096
MAX_FRAMES = 200_000


class VideoError(Exception):
    """Base class: the file cannot be used as a recording."""


class NotAVideo(VideoError):
    """The file is not a video container, or has no video stream."""


class CorruptVideo(VideoError):
    """The container opens but its frames cannot be decoded (truncated or damaged)."""


class UnsupportedCodec(VideoError):
    """The video stream uses a codec this build of FFmpeg/OpenCV cannot decode."""


class EmptyVideo(VideoError):
    """The video stream holds no decodable frame."""


class TooLarge(VideoError):
    """The frame size or the number of frames exceeds the configured limits."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    n_frames: int
    codec: str


def _open_container(path: str | os.PathLike) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise NotAVideo(f"{path.name}: the file does not exist.")
    if path.stat().st_size == 0:
        raise EmptyVideo(f"{path.name}: the file is empty (0 bytes).")
    try:
        container = av.open(str(path), mode="r")
    except av.error.InvalidDataError as exc:
        raise NotAVideo(
            f"{path.name}: not a video file FFmpeg recognises ({exc.strerror}). "
            "Upload an MP4 or AVI recording."
        ) from exc
    except av.error.FFmpegError as exc:
        raise CorruptVideo(f"{path.name}: the file cannot be opened ({exc}).") from exc
    if not container.streams.video:
        container.close()
        raise NotAVideo(f"{path.name}: the file has no video stream.")
    return container


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.base_rate, stream.guessed_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return 0.0


def _check_decoder(stream: av.video.stream.VideoStream, name: str) -> str:
    codec_context = stream.codec_context
    codec = codec_context.name if codec_context is not None else None
    if not codec or codec == "none":
        raise UnsupportedCodec(
            f"{name}: the video codec is not supported. "
            "Convert the recording to H.264 MP4 "
            "(e.g. ffmpeg -i in.avi -c:v libx264 out.mp4)."
        )
    return codec


def probe(
    path: str | os.PathLike,
    *,
    max_pixels: int = MAX_PIXELS,
    max_frames: int = MAX_FRAMES,
) -> VideoInfo:
    """Read a recording's frame rate, size, frame count and codec; decode one frame.

    Raises a :class:`VideoError` subclass when the file is not a usable recording.
    The frame count comes from the container when it states one, otherwise from
    counting packets (no decoding). When FFmpeg has no decoder for the stream,
    OpenCV is asked (as :func:`iter_frames` does).
    """
    try:
        return _probe_av(path, max_pixels=max_pixels, max_frames=max_frames)
    except UnsupportedCodec:
        info = _probe_cv2(path)
        if info is None:
            raise
    _check_limits(info, Path(path).name, max_pixels=max_pixels, max_frames=max_frames)
    return info


def _check_limits(
    info: VideoInfo, name: str, *, max_pixels: int, max_frames: int
) -> None:
    if info.width * info.height > max_pixels:
        raise TooLarge(
            f"{name}: frames of {info.width}x{info.height} px exceed the limit of "
            f"{max_pixels} pixels per frame."
        )
    if info.n_frames > max_frames:
        raise TooLarge(
            f"{name}: {info.n_frames} frames exceed the limit of {max_frames} frames."
        )


def _probe_cv2(path: str | os.PathLike) -> VideoInfo | None:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        ok, frame = capture.read()
        if not ok:
            return None
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip()
        return VideoInfo(
            fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            width=frame.shape[1],
            height=frame.shape[0],
            n_frames=max(1, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
            codec=codec or "unknown",
        )
    finally:
        capture.release()


def _probe_av(
    path: str | os.PathLike, *, max_pixels: int, max_frames: int
) -> VideoInfo:
    name = Path(path).name
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        codec = _check_decoder(stream, name)
        width, height = int(stream.width or 0), int(stream.height or 0)
        if width <= 0 or height <= 0:
            raise CorruptVideo(f"{name}: the video stream states no frame size.")
        if width * height > max_pixels:
            raise TooLarge(
                f"{name}: frames of {width}x{height} px exceed the limit of "
                f"{max_pixels} pixels per frame."
            )
        fps = _stream_fps(stream)
        n_frames = int(stream.frames or 0)
        try:
            first = next(container.decode(stream), None)
        except av.error.DecoderNotFoundError as exc:
            raise UnsupportedCodec(
                f"{name}: no decoder for codec {codec!r}. Convert the recording to "
                "H.264 MP4."
            ) from exc
        except av.error.FFmpegError as exc:
            raise CorruptVideo(
                f"{name}: the first frame cannot be decoded ({exc})."
            ) from exc
        if first is None:
            raise EmptyVideo(f"{name}: the video holds no frame.")
        if n_frames <= 0:
            container.seek(0)
            n_frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
        if n_frames <= 0:
            raise EmptyVideo(f"{name}: the video holds no frame.")
        if n_frames > max_frames:
            raise TooLarge(
                f"{name}: {n_frames} frames exceed the limit of {max_frames} frames."
            )
        if fps <= 0:
            fps = 0.0
        return VideoInfo(
            fps=fps, width=width, height=height, n_frames=n_frames, codec=codec
        )
    finally:
        container.close()


def _iter_frames_av(path: str | os.PathLike, *, gray: bool) -> Iterator[np.ndarray]:
    name = Path(path).name
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        _check_decoder(stream, name)
        stream.thread_type = "AUTO"
        expected = int(stream.frames or 0)
        fmt = "gray" if gray else "rgb24"
        index = 0
        decoded = container.decode(stream)
        while True:
            try:
                frame = next(decoded)
            except StopIteration:
                break
            except av.error.DecoderNotFoundError as exc:
                raise UnsupportedCodec(f"{name}: no decoder for this codec.") from exc
            except av.error.FFmpegError as exc:
                raise CorruptVideo(
                    f"{name}: decoding failed after {index} frames ({exc}); the "
                    "file looks truncated or damaged. Upload it again."
                ) from exc
            yield frame.to_ndarray(format=fmt)
            index += 1
        if index == 0:
            raise EmptyVideo(f"{name}: the video holds no frame.")
        if expected and index < 0.9 * expected:
            # The header promised more frames than the data holds: a cut-off upload.
            raise CorruptVideo(
                f"{name}: only {index} of {expected} frames could be decoded; "
                "the file looks truncated. Upload it again."
            )
    finally:
        container.close()


def _iter_frames_cv2(path: str | os.PathLike, *, gray: bool) -> Iterator[np.ndarray]:
    name = Path(path).name
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UnsupportedCodec(f"{name}: neither FFmpeg nor OpenCV can decode it.")
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if gray:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            else:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise EmptyVideo(f"{name}: the video holds no frame.")


def iter_frames(path: str | os.PathLike, *, gray: bool = False) -> Iterator[np.ndarray]:
    """Yield the frames one at a time: uint8 (H, W) when ``gray`` else (H, W, 3) RGB.

    Uses PyAV; falls back to OpenCV when PyAV has no decoder for the stream.
    Raises a :class:`VideoError` subclass on unusable input (possibly mid-stream,
    as :class:`CorruptVideo`, after the frames that decoded were yielded).
    """
    frames = _iter_frames_av(path, gray=gray)
    try:
        first = next(frames)
    except UnsupportedCodec:
        # FFmpeg in this build lacks the decoder; OpenCV may carry its own.
        yield from _iter_frames_cv2(path, gray=gray)
        return
    yield first
    yield from frames


def _fps_fraction(fps: float) -> Fraction:
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    return Fraction(fps).limit_denominator(1001)


def _as_rgb_even(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}.")
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(
            "frames must have shape (T, H, W), (T, H, W, 1) or (T, H, W, 3); "
            f"got {frames.shape}."
        )
    if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
        raise ValueError(f"frames must not be empty; got shape {frames.shape}.")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        # yuv420p needs even sizes; repeating the edge keeps the content unchanged.
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(frames)


def encode_mp4(
    frames: np.ndarray, *, fps: float, crf: int = 18, preset: str = "veryfast"
) -> bytes:
    """Encode uint8 frames (T,H,W[,C]) as a browser-playable H.264 MP4.

    libx264, yuv420p, ``movflags=+faststart`` (moov before mdat, so playback starts
    before the download ends). Odd sizes are padded by one edge row/column.
    """
    rgb = _as_rgb_even(frames)
    rate = _fps_fraction(fps)
    # faststart rewrites the file in a second pass, which needs a real file path.
    with tempfile.TemporaryDirectory(prefix="spermgrade-mp4-") as tmp:
        out_path = Path(tmp) / "clip.mp4"
        with av.open(
            str(out_path), mode="w", format="mp4", options={"movflags": "+faststart"}
        ) as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = rgb.shape[2], rgb.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            for image in rgb:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return out_path.read_bytes()


def mp4_top_level_boxes(data: bytes) -> list[str]:
    """Names of the top-level ISO-BMFF boxes in order (e.g. ftyp, moov, mdat)."""
    names, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        name = data[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            break
        names.append(name)
        offset += size
    return names
