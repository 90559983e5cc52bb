"""Detection and tracking accuracy on the real developer data in ../shared/data/real.

- SVIA / MIaMIA-SpermVideo (3 human videos, per-frame Pascal-VOC boxes): class ``S``
  is sperm; ``Impurity`` boxes are not sperm (a detection on one is a false
  positive). Detector preset "svia".
- DeepSperm bull frames (50 frames, YOLO boxes, one class). Preset "deepsperm".
- Tracked single-sperm clip with hand-tracked points: the template tracker starts
  from the first hand point; error = distance to the hand point in every frame that
  has one.

AP@0.5: VOC all-point interpolated AP over all the detector's candidates
(``score_threshold=0``), greedy matching at IoU >= 0.5, per video; ``svia_ap50`` is
the mean over the SVIA videos. Precision/recall: at the preset's operating
``score_threshold`` (the one tracking uses), pooled over all annotated frames.

Usage: .venv/bin/python benchmarks/detection.py   (last line: one JSON object)
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workers.video.detection import DETECTOR_PRESETS, BlobDetector  # noqa: E402
from workers.video.io import iter_frames  # noqa: E402
from workers.video.realdata import (  # noqa: E402
    hand_tracked_points,
    svia_annotations,
    yolo_boxes_read,
)
from workers.video.template import track_template  # noqa: E402
from workers.video.tracking_metrics import average_precision  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "real"
SVIA_VIDEOS = ("S_0001", "S_0002", "S_0003")


def _score(frames, preset: str):
    config = DETECTOR_PRESETS[preset]
    detector = BlobDetector(replace(config, score_threshold=0.0))
    per_frame = []
    for image, gt in frames:
        d = detector.detect(image)
        per_frame.append((d.boxes, d.scores, gt))
    ap = average_precision(per_frame).ap
    at_op = average_precision(per_frame, score_threshold=config.score_threshold)
    return ap, at_op


def svia_frames(stem: str):
    folder = DATA / "svia_sperm_videos"
    annotations = svia_annotations(folder / "annotations_subsetA", stem)
    for index, frame in enumerate(
        iter_frames(folder / "videos" / f"{stem}.mp4", gray=True)
    ):
        if index in annotations:
            yield frame, annotations[index].of_class("S")


def deepsperm_frames(folder: Path):
    for image_path in sorted(folder.glob("*.jpg")):
        image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
        gt = yolo_boxes_read(
            image_path.with_suffix(".txt"), width=image.shape[1], height=image.shape[0]
        )
        yield image, gt.boxes


def track_errors(clip: Path, csv: Path) -> np.ndarray:
    hand = hand_tracked_points(csv)
    track = track_template(iter_frames(clip, gray=True), point=tuple(hand[0]))
    n = min(len(hand), len(track.points))
    ok = ~np.isnan(hand[:n, 0])
    return np.linalg.norm(track.points[:n][ok] - hand[:n][ok], axis=1)


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"real data folder {DATA} is absent")
    rows, svia_aps, svia_frames_all = [], [], []
    for stem in SVIA_VIDEOS:
        frames = list(svia_frames(stem))
        svia_frames_all.extend(frames)
        ap, op = _score(frames, "svia")
        svia_aps.append(ap)
        rows.append(("SVIA " + stem, len(frames), op.n_gt, ap, op.precision, op.recall))
    _, svia_op = _score(svia_frames_all, "svia")
    deep_dir = DATA / "deepsperm_bull_frames" / "20200108-124252-461_OK_2s"
    deep_ap, deep_op = _score(list(deepsperm_frames(deep_dir)), "deepsperm")
    rows.append(
        ("DeepSperm " + deep_dir.name[:19], 50, deep_op.n_gt, deep_ap,
         deep_op.precision, deep_op.recall)
    )  # fmt: skip
    clips = DATA / "tracked_single_sperm_clips"
    errors = []
    for csv in sorted((clips / "hand_tracked").glob("*.csv")):
        err = track_errors(clips / "clips" / f"{csv.stem}.mp4", csv)
        errors.append(err)
        print(
            f"tracking {csv.stem}: {len(err)} hand points, median "
            f"{np.median(err):.2f} px, mean {err.mean():.2f} px, max {err.max():.2f} px"
        )
    all_errors = np.concatenate(errors)
    print(f"{'data':<32} {'frames':>6} {'boxes':>6} {'AP@0.5':>7} {'P':>6} {'R':>6}")
    for name, n_frames, n_gt, ap, p, r in rows:
        print(f"{name:<32} {n_frames:>6} {n_gt:>6} {ap:>7.3f} {p:>6.3f} {r:>6.3f}")
    print(
        f"{'SVIA mean AP / pooled P, R':<32} {'':>6} {svia_op.n_gt:>6} "
        f"{np.mean(svia_aps):>7.3f} {svia_op.precision:>6.3f} {svia_op.recall:>6.3f}"
    )
    print(
        json.dumps(
            {
                "svia_ap50": round(float(np.mean(svia_aps)), 4),
                "svia_precision": round(svia_op.precision, 4),
                "svia_recall": round(svia_op.recall, 4),
                "deepsperm_ap50": round(deep_ap, 4),
                "track_median_err_px": round(float(np.median(all_errors)), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
