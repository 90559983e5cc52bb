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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from video.detection import DETECTOR_PRESETS, BlobDetector  # noqa: E402
from video.io import iter_frames  # noqa: E402
from video.realdata import (  # noqa: E402
    detector_evaluate,
    hand_tracked_pairs,
    svia_annotations,
    svia_frames,
    svia_video_stems,
    template_errors,
    yolo_frame_folders,
    yolo_frames,
)

DATA = ROOT.parent / "shared" / "data" / "real"


def _score(frames, preset: str):
    return detector_evaluate(frames, config=DETECTOR_PRESETS[preset])


def impurity_hits(stem: str) -> tuple[int, int]:
    """(impurity boxes a detection hits at IoU >= 0.3, impurity boxes) at the
    operating threshold: how much debris the size/shape filters let through."""
    from video.tracking_metrics import box_iou

    folder = DATA / "svia_sperm_videos"
    annotations = svia_annotations(folder / "annotations_subsetA", stem)
    detector = BlobDetector(DETECTOR_PRESETS["svia"])
    hits = total = 0
    for index, frame in enumerate(
        iter_frames(folder / "videos" / f"{stem}.mp4", gray=True)
    ):
        if index not in annotations:
            continue
        impurities = annotations[index].of_class("Impurity")
        total += len(impurities)
        if len(impurities):
            boxes = detector.detect(frame).boxes
            if len(boxes):
                hits += int((box_iou(impurities, boxes).max(axis=1) >= 0.3).sum())
    return hits, total


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"real data folder {DATA} is absent")
    svia_videos = svia_video_stems(DATA / "svia_sperm_videos")
    rows, svia_aps, svia_frames_all = [], [], []
    for stem in svia_videos:
        frames = list(svia_frames(DATA / "svia_sperm_videos", stem))
        svia_frames_all.extend(frames)
        ap, op = _score(frames, "svia")
        svia_aps.append(ap)
        rows.append(("SVIA " + stem, len(frames), op.n_gt, ap, op.precision, op.recall))
    _, svia_op = _score(svia_frames_all, "svia")
    deep_frames = [
        frame
        for folder in yolo_frame_folders(DATA / "deepsperm_bull_frames")
        for frame in yolo_frames(folder)
    ]
    deep_ap, deep_op = _score(deep_frames, "deepsperm")
    rows.append(
        ("DeepSperm bull frames", len(deep_frames), deep_op.n_gt, deep_ap,
         deep_op.precision, deep_op.recall)
    )  # fmt: skip
    errors = []
    for clip, csv in hand_tracked_pairs(DATA / "tracked_single_sperm_clips"):
        err = template_errors(clip, csv)
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
    hits = [impurity_hits(stem) for stem in svia_videos]
    n_hit, n_imp = sum(h for h, _ in hits), sum(t for _, t in hits)
    print(
        f"SVIA impurity boxes detected as sperm at the operating point: "
        f"{n_hit} of {n_imp} ({n_hit / max(n_imp, 1):.1%})"
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
