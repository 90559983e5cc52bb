"""What an imported bundle may hold, checked before and while it is read.

A bundle comes from elsewhere: every member is bounded before it is opened (its
name, its declared size, its compression ratio) and every value is checked
against the rules the platform's own values follow (finite numbers in range,
types, lengths, pseudonyms of the exporter's form, arrays whose header matches
the clip). A bundle that breaks one is refused whole with the reason; nothing is
written. The bounds are settings (IMPORT_*), so a lab with larger clips can
raise them.
"""

from __future__ import annotations

import ast
import math
import re
import zipfile
from datetime import datetime

from django.conf import settings

from annotation.errors import DomainError
from annotation.models import (
    FPS_MAX,
    GRADES,
    SECONDS_SPENT_MAX,
    SPEED_MAX,
    Clip,
    VoteHistory,
)


class BundleError(DomainError):
    status_code = 400


CLIP_NAME = re.compile(r"C-[0-9a-f]{16}")
EXPERT_NAME = re.compile(r"E-[0-9a-f]{16}")
PATIENT_NAME = re.compile(r"P-[0-9a-f]{16}")
RECORDING_NAME = re.compile(r"R-[0-9a-f]{16}")
# Members by name; the value is the largest size (bytes) a member may declare,
# None for the text listings (IMPORT_MAX_TEXT_MB).
_FIXED = {
    "FORMAT.json": 64 * 1024,
    "dataset.json": 64 * 1024,
    "snapshot.json": None,  # lists every clip of the snapshot
    "datasheet.md": 1024 * 1024,
    "checksums.sha256": None,
    "manifest.jsonl": None,
    "clips.jsonl": None,
    "votes.csv": None,
    "vote_history.csv": None,
    "distributions.csv": None,
    "recordings.csv": None,
    "crowdkit.csv": None,
    "folds.json": None,
    "predictions.csv": None,
}
_ARRAY = re.compile(r"clips/(C-[0-9a-f]{16})\.npy")
_VIDEO = re.compile(r"media/(C-[0-9a-f]{16})\.mp4")
# Compressed text past this ratio is a bomb, not a listing (our own compress
# 3-10x); small members may compress better (a short JSON of zeros).
MAX_RATIO = 100
RATIO_FREE_BYTES = 1024 * 1024
# A clip array's .npy header is at most this long (numpy writes 128 bytes).
NPY_HEADER_MAX = 4096


def _mb(name: str, default: int) -> int:
    return int(getattr(settings, name, default)) * 1024 * 1024


def members_check(bundle: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Every member named as an export names it, once, with bounded sizes."""
    infos = bundle.infolist()
    if len(infos) > settings.IMPORT_MAX_MEMBERS:
        raise BundleError(
            f"The bundle has {len(infos):,} files; at most "
            f"{settings.IMPORT_MAX_MEMBERS:,} are read (IMPORT_MAX_MEMBERS)."
        )
    by_name: dict[str, zipfile.ZipInfo] = {}
    text_max = _mb("IMPORT_MAX_TEXT_MB", 2048)
    video_max = _mb("IMPORT_MAX_VIDEO_MB", 64)
    array_max = settings.IMPORT_MAX_ARRAY_BYTES
    for info in infos:
        name = info.filename
        shown = name[:80].encode("unicode_escape").decode()
        if name in by_name:
            raise BundleError(f"The bundle holds {shown} twice; export it again.")
        if name in _FIXED:
            limit = _FIXED[name] or text_max
        elif _ARRAY.fullmatch(name):
            limit = array_max
        elif _VIDEO.fullmatch(name):
            limit = video_max
        else:
            raise BundleError(
                f"The bundle holds a file an export never writes ({shown}); "
                "nothing was imported."
            )
        if info.file_size > limit:
            raise BundleError(
                f"{name} declares {info.file_size:,} bytes; at most {limit:,} are "
                "read for it."
            )
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > RATIO_FREE_BYTES
            and info.file_size > MAX_RATIO * max(1, info.compress_size)
        ):
            raise BundleError(
                f"{name} expands {info.file_size / max(1, info.compress_size):,.0f} "
                f"times (at most {MAX_RATIO}): a compression bomb, not an export."
            )
        by_name[name] = info
    return by_name


def read_small(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member already bounded by ``members_check``, read whole."""
    with bundle.open(info) as fh:
        data = fh.read(info.file_size + 1)
    if len(data) > info.file_size:  # pragma: no cover - zipfile stops at the size
        raise BundleError(f"{info.filename} is longer than it declares.")
    return data


def _where(listing: str, line: int) -> str:
    return f"{listing} line {line}"


def _number(value, where: str, field: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BundleError(f"{where}: {field} must be a number, not {value!r:.40}.")
    if not math.isfinite(value) or not low <= value <= high:
        raise BundleError(f"{where}: {field} must lie in {low:g}..{high:g}.")
    return float(value)


def _integer(value, where: str, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BundleError(f"{where}: {field} must be an integer, not {value!r:.40}.")
    if not low <= value <= high:
        raise BundleError(f"{where}: {field} must lie in {low}..{high}.")
    return value


def _safe_text(value, where: str, field: str, *, max_length: int = 32) -> str:
    """Short plain text: no formula start (=, +, -, @) a spreadsheet would run."""
    if not isinstance(value, str) or len(value) > max_length:
        raise BundleError(f"{where}: {field} must be text of at most {max_length}.")
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") or not value.isprintable():
        raise BundleError(f"{where}: {field} {value!r:.40} is not plain text.")
    return value


def clip_row_check(row, line: int) -> dict:
    """One clips.jsonl row, checked field by field; returns it."""
    where = _where("clips.jsonl", line)
    if not isinstance(row, dict):
        raise BundleError(f"{where}: a clip must be a JSON object.")
    name = row.get("clip")
    if not isinstance(name, str) or not CLIP_NAME.fullmatch(name):
        raise BundleError(f"{where}: clip must be a clip pseudonym (C-<16 hex>).")
    where = f"{where} ({name})"
    patient = row.get("patient")
    if not isinstance(patient, str) or not PATIENT_NAME.fullmatch(patient):
        raise BundleError(f"{where}: patient must be a pseudonym (P-<16 hex>).")
    recording = row.get("recording")
    if recording is not None and not (
        isinstance(recording, str) and RECORDING_NAME.fullmatch(recording)
    ):
        raise BundleError(f"{where}: recording must be a pseudonym (R-<16 hex>).")
    max_frames = settings.IMPORT_MAX_CLIP_FRAMES
    n_frames = _integer(row.get("n_frames"), where, "n_frames", low=1, high=max_frames)
    start = _integer(row.get("frame_start"), where, "frame_start", low=0, high=2**31)
    _integer(row.get("frame_end"), where, "frame_end", low=start, high=2**31)
    size = row.get("size_px")
    _integer(size, where, "size_px", low=8, high=settings.IMPORT_MAX_CLIP_PX)
    _number(row.get("source_fps"), where, "source_fps", low=0.01, high=FPS_MAX)
    if "fps" in row:
        _number(row["fps"], where, "fps", low=0.01, high=FPS_MAX)
    if "stride" in row:
        _number(row["stride"], where, "stride", low=1e-3, high=FPS_MAX)
    _number(row.get("speed"), where, "speed", low=0, high=SPEED_MAX)
    if row.get("speed_unit") not in Clip.SpeedUnit.values:
        raise BundleError(
            f"{where}: speed_unit must be one of {', '.join(Clip.SpeedUnit.values)}."
        )
    if not isinstance(row.get("synthetic"), bool):
        raise BundleError(f"{where}: synthetic must be true or false.")
    if row.get("latent_quality") is not None:
        _number(row["latent_quality"], where, "latent_quality", low=0, high=1)
    track = row.get("track")
    if not isinstance(track, list) or len(track) > max_frames:
        raise BundleError(f"{where}: track must be a list of at most {max_frames}.")
    for point in track:
        if not isinstance(point, list) or len(point) != 2:
            raise BundleError(f"{where}: each track point must be [x, y].")
        for value in point:
            _number(value, where, "a track coordinate", low=-1e6, high=1e6)
    kinematics = row.get("kinematics")
    if kinematics is None:
        kinematics = row["kinematics"] = {}
    if not isinstance(kinematics, dict) or len(kinematics) > 64:
        raise BundleError(f"{where}: kinematics must be an object of at most 64.")
    for key, value in kinematics.items():
        _safe_text(key, where, "a kinematics name")
        if isinstance(value, str):
            _safe_text(value, where, f"kinematics {key}")
        elif value is not None and not isinstance(value, bool):
            _number(value, where, f"kinematics {key}", low=-1e9, high=1e9)
    video = row.get("video")
    if video is not None and video != f"media/{name}.mp4":
        raise BundleError(f"{where}: video must be media/{name}.mp4.")
    row["n_frames"] = n_frames
    return row


def array_check(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, row: dict) -> None:
    """The .npy header says uint8 (frames, height, width, 3) within the clip
    bounds, C order, and the member holds exactly that many bytes: checked before
    the array is copied."""
    import numpy as np

    where = f"{info.filename}"
    with bundle.open(info) as fh:
        head = fh.read(min(info.file_size, NPY_HEADER_MAX))
    try:
        magic = head[:6]
        if magic != b"\x93NUMPY":
            raise ValueError("not a .npy file")
        major = head[6]
        length_bytes = 2 if major == 1 else 4
        start = 8 + length_bytes
        header_len = int.from_bytes(head[8:start], "little")
        if start + header_len > len(head):
            raise ValueError("header too long")
        header = ast.literal_eval(head[start : start + header_len].decode("latin1"))
        dtype = np.dtype(header["descr"])
        shape = tuple(header["shape"])
        fortran = header["fortran_order"]
    except (ValueError, SyntaxError, KeyError, TypeError, IndexError) as exc:
        raise BundleError(f"{where} is not a readable clip array ({exc}).") from None
    frames, px = settings.IMPORT_MAX_CLIP_FRAMES, settings.IMPORT_MAX_CLIP_PX
    if (
        dtype != np.uint8
        or fortran
        or len(shape) != 4
        or shape[3] != 3
        or not (1 <= shape[0] <= frames and 1 <= shape[1] <= px and 1 <= shape[2] <= px)
    ):
        raise BundleError(
            f"{where} holds {dtype} {shape}; a clip here is uint8 (frames, height, "
            f"width, 3), C order, at most {frames} frames of {px} x {px} px."
        )
    if info.file_size != start + header_len + math.prod(shape):
        raise BundleError(f"{where} is not as long as its header says.")


def _time(text: str, where: str, field: str, *, required: bool) -> datetime | None:
    if not text:
        if required:
            raise BundleError(f"{where}: {field} is missing.")
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BundleError(f"{where}: {field} {text!r:.40} is not a time.") from None
    if value.tzinfo is None:
        raise BundleError(f"{where}: {field} must carry its time zone (UTC).")
    return value


def _vote_fields_check(row: dict, where: str) -> None:
    """What a vote row and a history row share: names, grade, repeat flag."""
    if not CLIP_NAME.fullmatch(row.get("clip") or ""):
        raise BundleError(f"{where}: clip must be a clip pseudonym.")
    if not EXPERT_NAME.fullmatch(row.get("expert") or ""):
        raise BundleError(f"{where}: expert must be an expert pseudonym (E-<16 hex>).")
    if row.get("grade") not in GRADES:
        raise BundleError(f"{where}: grade must be one of A-E.")
    if row.get("is_repeat") not in ("0", "1"):
        raise BundleError(f"{where}: is_repeat must be 0 or 1.")


def vote_row_check(row: dict, line: int) -> dict:
    """One votes.csv row: names, grade A-E, times with zone, seconds 0..a day."""
    where = _where("votes.csv", line)
    _vote_fields_check(row, where)
    created = _time(row.get("created_at"), where, "created_at", required=True)
    updated = _time(row.get("updated_at"), where, "updated_at", required=False)
    try:
        seconds = float(row.get("seconds_spent") or 0)
    except ValueError:
        raise BundleError(f"{where}: seconds_spent must be a number.") from None
    _number(seconds, where, "seconds_spent", low=0, high=SECONDS_SPENT_MAX)
    return {
        **row,
        "created_at": created,
        "updated_at": updated or created,
        "seconds_spent": seconds,
    }


def history_row_check(row: dict, line: int) -> dict:
    where = _where("vote_history.csv", line)
    _vote_fields_check(row, where)
    if row.get("action") not in VoteHistory.Action.values:
        raise BundleError(f"{where}: action must be one of the history's actions.")
    if row.get("previous_grade") not in ("", *GRADES):
        raise BundleError(f"{where}: previous_grade must be empty or A-E.")
    at = _time(row.get("at"), where, "at", required=True)
    return {**row, "at": at}
