"""Detection and tracking metrics (pure numpy/scipy).

- :func:`box_iou`, :func:`detection_match`, :func:`average_precision` (Pascal-VOC
  all-point interpolated AP at an IoU threshold, greedy matching by score);
- :func:`mot_metrics`: CLEAR-MOT MOTA and IDF1 (Ristani et al. 2016) for point
  tracks matched by centre distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU between xyxy boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def detection_match(
    pred_boxes: np.ndarray,
    pred_scores: np.ndarray,
    gt_boxes: np.ndarray,
    *,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """True-positive flag per prediction (VOC greedy matching in score order)."""
    order = np.argsort(-np.asarray(pred_scores))
    tp = np.zeros(len(order), dtype=bool)
    if len(gt_boxes) == 0 or len(order) == 0:
        return tp
    iou = box_iou(np.asarray(pred_boxes)[order], gt_boxes)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for rank in range(len(order)):
        candidates = np.where(taken, -1.0, iou[rank])
        best = int(np.argmax(candidates))
        if candidates[best] >= iou_threshold:
            taken[best] = True
            tp[order[rank]] = True
    return tp


@dataclass(frozen=True)
class DetectionScore:
    ap: float
    precision: float
    recall: float
    n_gt: int
    n_pred: int


def average_precision(
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    iou_threshold: float = 0.5,
    score_threshold: float | None = None,
) -> DetectionScore:
    """AP over frames of (pred_boxes, pred_scores, gt_boxes).

    AP is the all-point interpolated area under the precision/recall curve (VOC
    2010+). Precision and recall are reported at ``score_threshold`` (all
    predictions when None).
    """
    scores, flags, n_gt = [], [], 0
    for pred_boxes, pred_scores, gt_boxes in frames:
        flags.append(
            detection_match(
                pred_boxes, pred_scores, gt_boxes, iou_threshold=iou_threshold
            )
        )
        scores.append(np.asarray(pred_scores, np.float64))
        n_gt += len(gt_boxes)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    all_tp = np.concatenate(flags) if flags else np.zeros(0, bool)
    order = np.argsort(-all_scores, kind="stable")
    tp_sorted = all_tp[order]
    cum_tp = np.cumsum(tp_sorted)
    cum_fp = np.cumsum(~tp_sorted)
    recall = cum_tp / max(n_gt, 1)
    precision = cum_tp / np.maximum(cum_tp + cum_fp, 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    ap = float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    keep = (
        all_scores >= score_threshold
        if score_threshold is not None
        else np.ones(len(all_scores), bool)
    )
    n_tp = int(all_tp[keep].sum())
    n_pred = int(keep.sum())
    return DetectionScore(
        ap=ap if n_gt else 0.0,
        precision=n_tp / n_pred if n_pred else 0.0,
        recall=n_tp / n_gt if n_gt else 0.0,
        n_gt=n_gt,
        n_pred=n_pred,
    )


@dataclass(frozen=True)
class MotScore:
    mota: float
    idf1: float
    misses: int
    false_positives: int
    id_switches: int
    n_gt: int


def mot_metrics(
    gt_tracks: dict[int, np.ndarray],
    pred_tracks: dict[int, np.ndarray],
    *,
    max_distance: float,
) -> MotScore:
    """MOTA and IDF1 for point tracks.

    Both inputs map an id to a (T, 2) array of (x, y) per frame with NaN where the
    object is absent (all arrays the same T). A prediction matches a ground-truth
    point within ``max_distance`` pixels.

    MOTA = 1 - (misses + false positives + id switches) / ground-truth points, with
    per-frame Hungarian matching that keeps previous correspondences when still
    valid (CLEAR-MOT). IDF1 = 2 IDTP / (gt points + predicted points) after the
    global one-to-one id assignment that maximises IDTP.
    """
    gt_ids, pred_ids = list(gt_tracks), list(pred_tracks)
    lengths = {len(v) for v in (*gt_tracks.values(), *pred_tracks.values())}
    if len(lengths) > 1:
        raise ValueError(f"all tracks must have the same length, got {lengths}.")
    t_len = lengths.pop() if lengths else 0
    gt = np.stack([gt_tracks[i] for i in gt_ids]) if gt_ids else np.zeros((0, t_len, 2))
    pr = (
        np.stack([pred_tracks[i] for i in pred_ids])
        if pred_ids
        else np.zeros((0, t_len, 2))
    )
    gt_present = ~np.isnan(gt[..., 0])
    pr_present = ~np.isnan(pr[..., 0])
    n_gt = int(gt_present.sum())
    n_pr = int(pr_present.sum())
    misses = false_pos = switches = 0
    last_match: dict[int, int] = {}
    # IDF1 needs, for each (gt, pred) pair, the number of frames both are present
    # and within the distance.
    pair_hits = np.zeros((len(gt_ids), len(pred_ids)), dtype=np.int64)
    for t in range(t_len):
        g_idx = np.flatnonzero(gt_present[:, t])
        p_idx = np.flatnonzero(pr_present[:, t])
        if len(g_idx) and len(p_idx):
            dist = np.linalg.norm(gt[g_idx, t][:, None] - pr[p_idx, t][None], axis=2)
            close = dist <= max_distance
            pair_hits[np.ix_(g_idx, p_idx)] += close
            cost = np.where(close, dist, 1e6)
            # Keep last frame's correspondences when still valid (CLEAR-MOT).
            for gi_pos, gi in enumerate(g_idx):
                prev = last_match.get(int(gi))
                if prev is not None:
                    hits = np.flatnonzero(p_idx == prev)
                    if len(hits) and close[gi_pos, hits[0]]:
                        cost[gi_pos, hits[0]] = -1.0
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < 1e6
            rows, cols = rows[ok], cols[ok]
        else:
            rows = cols = np.zeros(0, dtype=int)
        for r, c in zip(rows, cols):
            gi, pi = int(g_idx[r]), int(p_idx[c])
            if gi in last_match and last_match[gi] != pi:
                switches += 1
            last_match[gi] = pi
        misses += len(g_idx) - len(rows)
        false_pos += len(p_idx) - len(cols)
    mota = 1.0 - (misses + false_pos + switches) / n_gt if n_gt else 0.0
    if len(gt_ids) and len(pred_ids):
        rows, cols = linear_sum_assignment(-pair_hits)
        idtp = int(pair_hits[rows, cols].sum())
    else:
        idtp = 0
    idf1 = 2 * idtp / (n_gt + n_pr) if (n_gt + n_pr) else 0.0
    return MotScore(
        mota=float(mota),
        idf1=float(idf1),
        misses=misses,
        false_positives=false_pos,
        id_switches=switches,
        n_gt=n_gt,
    )
