import cv2
import numpy as np
import pytest

from video.detection import (
    DETECTOR_PRESETS,
    BlobDetector,
    Detections,
    DetectorConfig,
    to_grey,
)


def _field(heads, *, dots=(), rings=(), size=(240, 320), seed=0):
    """Grey field (150) with dark elliptical heads, tiny dark dots, big dark rings."""
    rng = np.random.default_rng(seed)
    img = np.full(size, 150, np.uint8)
    for x, y in heads:
        cv2.ellipse(img, (x, y), (6, 4), 30, 0, 360, 60, -1)
    for x, y in dots:
        cv2.circle(img, (x, y), 1, 70, -1)
    for x, y in rings:
        cv2.circle(img, (x, y), 30, 60, 3)
    noise = rng.normal(0, 3, size)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


HEADS = [(40, 50), (120, 60), (200, 180), (280, 100), (90, 190)]


def _matched(detections, points, tol=3.0):
    centres = detections.centres
    return [
        bool(len(centres)) and float(np.min(np.linalg.norm(centres - p, axis=1))) < tol
        for p in np.asarray(points, float)
    ]


def test_blob_detector_finds_every_head_near_its_centre():
    detections = BlobDetector().detect(_field(HEADS))
    assert all(_matched(detections, HEADS))
    assert len(detections) == len(HEADS)


def test_blob_detector_rejects_small_dots_and_large_rings():
    frame = _field(
        HEADS[:2], dots=[(160, 40), (250, 200), (30, 200)], rings=[(220, 90)]
    )
    detections = BlobDetector().detect(frame)
    assert all(_matched(detections, HEADS[:2]))
    assert not any(_matched(detections, [(160, 40), (250, 200), (30, 200)]))
    assert len(detections) == 2


def test_boxes_have_about_the_head_size_and_scores_are_sorted():
    detections = BlobDetector().detect(_field(HEADS))
    widths = detections.boxes[:, 2] - detections.boxes[:, 0]
    assert np.all((widths >= 10) & (widths <= 26))
    assert np.all(np.diff(detections.scores) <= 0)


def test_rgb_and_grey_frames_give_the_same_detections():
    grey = _field(HEADS)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    a, b = BlobDetector().detect(grey), BlobDetector().detect(rgb)
    assert len(a) == len(b)
    np.testing.assert_allclose(a.centres, b.centres, atol=1.0)


def test_physical_scale_sets_the_head_size_in_pixels():
    assert DetectorConfig(um_per_px=0.5).head_px() == pytest.approx(9.0)
    assert DetectorConfig().head_px() == pytest.approx(12.0)
    with pytest.raises(ValueError, match="um_per_px"):
        DetectorConfig(um_per_px=0).head_px()


def test_bright_polarity_finds_bright_heads_only():
    img = np.full((200, 200), 120, np.uint8)
    cv2.ellipse(img, (60, 60), (6, 4), 0, 0, 360, 200, -1)
    cv2.ellipse(img, (140, 140), (6, 4), 0, 0, 360, 40, -1)
    bright = BlobDetector(DetectorConfig(polarity="bright")).detect(img)
    assert _matched(bright, [(60, 60), (140, 140)]) == [True, False]


def test_empty_frame_gives_no_detections():
    assert len(BlobDetector().detect(np.full((100, 100), 128, np.uint8))) == 0


def test_detections_validate_their_shapes():
    with pytest.raises(ValueError, match="scores"):
        Detections(boxes=np.zeros((2, 4), np.float32), scores=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="boxes"):
        Detections(boxes=np.zeros((2, 3), np.float32), scores=np.zeros(2, np.float32))


def test_to_grey_rejects_odd_shapes():
    with pytest.raises(ValueError):
        to_grey(np.zeros((4, 4, 2), np.uint8))


def test_synthetic_preset_finds_rendered_heads():
    from video.synthetic import render_recording

    rec = render_recording(
        n_sperm=20, n_frames=3, width=320, height=240, fps=15.0,
        rng=np.random.default_rng(3),
    )  # fmt: skip
    detector = BlobDetector(DETECTOR_PRESETS["synthetic"])
    found = total = 0
    for t, frame in enumerate(rec.iter_frames()):
        centres = np.array([tr[t] for tr in rec.tracks.values()])
        inside = (
            (centres[:, 0] > 8) & (centres[:, 0] < 312)
            & (centres[:, 1] > 8) & (centres[:, 1] < 232)
        )  # fmt: skip
        found += sum(_matched(detector.detect(frame), centres[inside], tol=5.0))
        total += int(inside.sum())
    assert total > 10 and found / total >= 0.8
