import cv2
import numpy as np
import pytest

from video.template import TemplateTracker, track_template


def _moving_head_frames(path, *, size=(160, 200), seed=0):
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(
        rng.normal(140, 12, size).astype(np.float32), (0, 0), 3
    )
    frames = []
    for x, y in path:
        img = background.copy()
        cv2.ellipse(img, (int(round(x * 16)), int(round(y * 16))), (6 * 16, 4 * 16),
                    20, 0, 360, 60, -1, cv2.LINE_AA, 4)  # fmt: skip
        img += rng.normal(0, 2, size)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def test_template_tracker_follows_a_moving_head_to_within_a_pixel():
    t = np.arange(24, dtype=float)
    path = np.c_[40 + 4.5 * t, 60 + 12 * np.sin(t / 4)]
    frames = _moving_head_frames(path)
    track = track_template(frames, point=tuple(path[0]))
    errors = np.linalg.norm(track.points - path, axis=1)
    assert track.points.shape == (24, 2)
    assert np.median(errors) < 1.0 and errors.max() < 2.5
    assert np.all(track.scores[1:] > 0.5)


def test_template_tracker_reports_a_lost_target_and_coasts():
    t = np.arange(6, dtype=float)
    frames = _moving_head_frames(np.c_[40 + 3 * t, 60 + 0 * t])
    tracker = TemplateTracker(frames[0], point=(40, 60))
    for frame in frames[1:4]:
        tracker.update(frame)
    noise = np.random.default_rng(1).integers(0, 255, frames[0].shape, dtype=np.uint8)
    x, _, score = tracker.update(noise)
    assert score == -1.0
    assert x == pytest.approx(40 + 3 * 4, abs=2.0)


def test_point_outside_the_first_frame_is_rejected():
    frame = np.zeros((50, 60), np.uint8)
    with pytest.raises(ValueError, match="outside"):
        TemplateTracker(frame, point=(70, 10))


def test_tracking_needs_frames():
    with pytest.raises(ValueError, match="no frames"):
        track_template([], point=(1, 1))


def test_max_frames_limits_the_track():
    frames = _moving_head_frames(np.c_[np.full(10, 50.0), np.full(10, 60.0)])
    assert len(track_template(frames, point=(50, 60), max_frames=4).points) == 4
