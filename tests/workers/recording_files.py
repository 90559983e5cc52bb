"""Small recordings for the preprocessing tests: good, broken, and not videos at all."""

from __future__ import annotations

import struct
import tempfile
import zlib
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from video.io import encode_mp4
from video.synthetic import render_recording

SYNTH_FPS = 15.0


@cache
def synthetic_recording(seed: int = 0):
    """A small bright-head synthetic field (320x240, 20 frames) with its truth."""
    return render_recording(
        n_sperm=12,
        n_frames=20,
        width=320,
        height=240,
        fps=SYNTH_FPS,
        rng=np.random.default_rng([seed, 4242]),
        n_debris=8,
    )


@cache
def synthetic_mp4(seed: int = 0) -> bytes:
    return encode_mp4(synthetic_recording(seed).frames(), fps=SYNTH_FPS)


def truncated_mp4() -> bytes:
    data = synthetic_mp4()
    return data[: len(data) // 2]


def unsupported_codec_mp4() -> bytes:
    # The sample entry names a codec no decoder knows: FFmpeg reports codec "none".
    return synthetic_mp4().replace(b"avc1", b"zzzz")


@cache
def zero_frame_avi() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "empty.avi"
        writer = cv2.VideoWriter(
            str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 64)
        )
        writer.release()
        return path.read_bytes()


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


TEXT_BYTES = b"patient,filename\nP1,a.mp4\n" * 20


def upload(client, data: bytes, *, name: str = "field.mp4", **fields):
    """POST the recording upload form with ``data`` as the file; ``fields``
    override the defaults (automatic mode, 5 clips, 0.5 µm/px)."""
    form = {
        "patient_code": "P-0042",
        "mode": "auto",
        "max_clips": 5,
        "um_per_px": "0.5",
        "fps": "",
        "microscope_notes": "",
        "file": SimpleUploadedFile(name, data, content_type="video/mp4"),
        **fields,
    }
    return client.post(reverse("recording_upload"), form)
