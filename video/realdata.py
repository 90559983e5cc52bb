"""Loaders for the public real-data annotations used to measure accuracy (pure).

- Pascal-VOC XML per frame (SVIA / MIaMIA-SpermVideo): classes ``S`` (sperm) and
  ``Impurity``.
- darknet/YOLO ``.txt`` per frame (DeepSperm, VISEM-Tracking): ``class cx cy w h``
  normalised to [0, 1].
- Hand-tracked point CSVs (``frame,1x,1y``; blank cells where the point was not
  tracked).
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from video.detection import BlobDetector, DetectorConfig
from video.tracking_metrics import DetectionScore, average_precision


@dataclass(frozen=True)
class FrameBoxes:
    """Ground-truth boxes of one frame: xyxy pixels and class names."""

    boxes: np.ndarray  # (N, 4) float32, xyxy
    labels: tuple[str, ...]

    def of_class(self, name: str) -> np.ndarray:
        keep = np.array([label == name for label in self.labels], dtype=bool)
        return self.boxes[keep] if len(self.labels) else self.boxes.reshape(0, 4)


def voc_boxes_read(path: str | Path) -> FrameBoxes:
    """Read one Pascal-VOC XML: every ``<object>`` with its ``<bndbox>``."""
    root = ET.parse(path).getroot()
    boxes, labels = [], []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            continue
        boxes.append([float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
        labels.append((obj.findtext("name") or "").strip())
    return FrameBoxes(
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4), labels=tuple(labels)
    )


def svia_annotations(
    annotation_dir: str | Path, video_stem: str
) -> dict[int, FrameBoxes]:
    """0-based frame index -> boxes for ``<video_stem>_FFFF.xml`` (FFFF is 1-based)."""
    pattern = re.compile(rf"^{re.escape(video_stem)}_(\d+)\.xml$")
    frames = {}
    for path in sorted(Path(annotation_dir).iterdir()):
        match = pattern.match(path.name)
        if match:
            frames[int(match.group(1)) - 1] = voc_boxes_read(path)
    return frames


def yolo_boxes_read(path: str | Path, *, width: int, height: int) -> FrameBoxes:
    """Read a darknet/YOLO label file into pixel xyxy boxes (label = class id)."""
    boxes, labels = [], []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        cls, cx, cy, w, h = parts
        cx, cy = float(cx) * width, float(cy) * height
        w, h = float(w) * width, float(h) * height
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        labels.append(cls)
    return FrameBoxes(
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4), labels=tuple(labels)
    )


def hand_tracked_points(path: str | Path) -> np.ndarray:
    """(T, 2) float array of the first tracked point per frame; NaN where blank."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    points = []
    for row in rows[1:]:
        if len(row) < 3:
            continue
        x, y = row[1].strip(), row[2].strip()
        points.append([float(x), float(y)] if x and y else [np.nan, np.nan])
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


# ---------------------------------------------------------------- discovery
# The data folders are found by content, not by name, so a held-out counterpart with
# other file names is measured the same way.
def svia_video_stems(folder: str | Path) -> list[str]:
    """Stems of ``videos/*.mp4`` that have at least one annotation XML."""
    folder = Path(folder)
    annotated = {
        path.name.rsplit("_", 1)[0]
        for path in (folder / "annotations_subsetA").glob("*.xml")
    }
    return sorted(
        path.stem
        for path in (folder / "videos").glob("*.mp4")
        if path.stem in annotated
    )


def yolo_frame_folders(folder: str | Path) -> list[Path]:
    """Sub-folders of ``folder`` holding ``*.jpg`` frames with YOLO ``.txt`` boxes."""
    return sorted(
        path
        for path in Path(folder).iterdir()
        if path.is_dir()
        and any(jpg.with_suffix(".txt").exists() for jpg in path.glob("*.jpg"))
    )


def hand_tracked_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(clip mp4, hand-tracked CSV) pairs of a tracked-clips folder."""
    folder = Path(folder)
    return [
        (folder / "clips" / f"{csv.stem}.mp4", csv)
        for csv in sorted((folder / "hand_tracked").glob("*.csv"))
        if (folder / "clips" / f"{csv.stem}.mp4").exists()
    ]


# ---------------------------------------------------------------- evaluation helpers
def svia_frames(
    folder: str | Path, stem: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(grey frame, sperm boxes) for each annotated frame of an SVIA video.

    ``folder`` holds ``videos/<stem>.mp4`` and ``annotations_subsetA/``.
    """
    from video.io import iter_frames

    folder = Path(folder)
    annotations = svia_annotations(folder / "annotations_subsetA", stem)
    for index, frame in enumerate(
        iter_frames(folder / "videos" / f"{stem}.mp4", gray=True)
    ):
        if index in annotations:
            yield frame, annotations[index].of_class("S")


def yolo_frames(folder: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(grey image, boxes) for every ``*.jpg`` with a YOLO ``.txt`` beside it."""
    import cv2

    for image_path in sorted(Path(folder).glob("*.jpg")):
        image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
        gt = yolo_boxes_read(
            image_path.with_suffix(".txt"), width=image.shape[1], height=image.shape[0]
        )
        yield image, gt.boxes


def detector_evaluate(
    frames: Iterable[tuple[np.ndarray, np.ndarray]], *, config: DetectorConfig
) -> tuple[float, DetectionScore]:
    """AP@0.5 over all candidates, and P/R at ``config.score_threshold``."""
    detector = BlobDetector(replace(config, score_threshold=0.0))
    per_frame = []
    for image, gt in frames:
        d = detector.detect(image)
        per_frame.append((d.boxes, d.scores, gt))
    ap = average_precision(per_frame).ap
    return ap, average_precision(per_frame, score_threshold=config.score_threshold)


def template_errors(clip: str | Path, csv: str | Path) -> np.ndarray:
    """Template tracker from the first hand point: distance (px) to each hand point."""
    from video.io import iter_frames
    from video.template import track_template

    hand = hand_tracked_points(csv)
    track = track_template(iter_frames(clip, gray=True), point=tuple(hand[0]))
    n = min(len(hand), len(track.points))
    ok = ~np.isnan(hand[:n, 0])
    return np.linalg.norm(track.points[:n][ok] - hand[:n][ok], axis=1)
