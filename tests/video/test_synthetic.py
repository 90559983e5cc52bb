"""The synthetic phase-contrast renderer: shapes, determinism and ground truth."""

import numpy as np
import pytest

from video.synthetic import render_clip, render_recording


def _clip(quality: float, seed: int, **kwargs):
    return render_clip(quality=quality, rng=np.random.default_rng(seed), **kwargs)


def test_clip_has_the_requested_shape_and_dtype():
    clip = _clip(0.7, 0, n_frames=5, size=64)
    assert clip.frames.shape == (5, 64, 64, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.track.shape == (5, 2)
    assert clip.field_track.shape == (5, 2)
    assert clip.metadata["synthetic"] is True
    assert clip.params["synthetic"] is True
    assert 0.0 <= clip.shape_defect <= 1.0


def test_same_seed_renders_identical_clips_and_other_seeds_differ():
    a, b, c = _clip(0.5, 7), _clip(0.5, 7), _clip(0.5, 8)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.track, b.track)
    assert a.speed_px_s == b.speed_px_s
    assert not np.array_equal(a.frames, c.frames)


def test_track_stays_inside_the_clip_near_its_centre():
    for seed in range(4):
        clip = _clip(0.9, seed, n_frames=16, size=150)
        assert np.all(clip.track >= 0) and np.all(clip.track < 150)
        assert np.abs(clip.track - 75).max() <= 1.0


def test_head_is_brighter_than_the_background():
    for seed in range(4):
        clip = _clip(0.8, seed, other_cells=0)
        gray = clip.frames[..., 0].astype(float)
        for t in (0, 8, 15):
            x, y = np.round(clip.track[t]).astype(int)
            head = gray[t, y - 1 : y + 2, x - 1 : x + 2].mean()
            assert head > np.median(gray[t]) + 25


def test_better_quality_moves_faster_on_average():
    levels = [0.05, 0.35, 0.65, 0.95]
    speeds = [np.mean([_clip(q, s).speed_px_s for s in range(5)]) for q in levels]
    assert all(a < b for a, b in zip(speeds, speeds[1:])), speeds
    assert speeds[0] < 15 and speeds[-1] > 60


def test_worse_quality_has_more_shape_defects_on_average():
    good = np.mean([_clip(0.95, s, n_frames=2).shape_defect for s in range(12)])
    bad = np.mean([_clip(0.05, s, n_frames=2).shape_defect for s in range(12)])
    assert bad > good + 0.3


def test_focus_drift_blurs_some_frames():
    clip = _clip(0.6, 3, focus_drift=2.5, noise_sigma=0.0, other_cells=0, n_debris=0)
    sharpness = [
        np.abs(np.diff(f[..., 0].astype(float), axis=1)).max() for f in clip.frames
    ]
    assert max(sharpness) > 1.5 * min(sharpness)


def test_quality_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="quality"):
        _clip(1.5, 0)


@pytest.fixture(scope="module")
def recording():
    return render_recording(
        n_sperm=12, n_frames=20, width=320, height=240, fps=15.0,
        rng=np.random.default_rng(5), n_debris=10,
    )  # fmt: skip


def test_recording_tracks_are_nan_exactly_outside_the_field(recording):
    assert set(recording.tracks) == set(recording.qualities) == set(range(1, 13))
    for track in recording.tracks.values():
        assert track.shape == (20, 2)
        seen = ~np.isnan(track[:, 0])
        assert np.all(np.isnan(track[~seen]))
        assert np.all((track[seen] >= 0) & (track[seen] < [320, 240]))
    assert recording.metadata["synthetic"] is True


def test_recording_head_boxes_contain_the_true_track_points(recording):
    for t, boxes in enumerate(recording.boxes):
        visible = {i for i, tr in recording.tracks.items() if not np.isnan(tr[t, 0])}
        assert {int(b[0]) for b in boxes} == visible
        for cell_id, x0, y0, x1, y1 in boxes:
            x, y = recording.tracks[int(cell_id)][t]
            assert x0 - 0.5 <= x <= x1 + 0.5 and y0 - 0.5 <= y <= y1 + 0.5
            assert 0 < x1 - x0 <= 25 and 0 < y1 - y0 <= 25


def test_recording_frames_stream_identically_on_every_pass(recording):
    first = list(recording.iter_frames())
    assert len(first) == 20
    assert first[0].shape == (240, 320, 3) and first[0].dtype == np.uint8
    second = recording.frames()
    np.testing.assert_array_equal(np.stack(first), second)
    gray = next(recording.iter_frames(gray=True))
    assert gray.shape == (240, 320)


def test_recording_heads_are_bright_where_the_tracks_say(recording):
    frame = next(recording.iter_frames(gray=True)).astype(float)
    background = np.median(frame)
    values = [
        frame[int(round(tr[0, 1])), int(round(tr[0, 0]))]
        for tr in recording.tracks.values()
        if not np.isnan(tr[0, 0])
    ]
    assert values and np.median(values) > background + 25


def test_recording_debris_boxes_are_listed_per_frame(recording):
    assert len(recording.debris_boxes) == 20
    assert all(b.shape[1] == 4 for b in recording.debris_boxes)
    assert sum(len(b) for b in recording.debris_boxes) > 0


def test_dark_polarity_draws_dark_heads_with_the_same_truth():
    bright = _clip(0.8, 9, other_cells=0)
    dark = _clip(0.8, 9, other_cells=0, polarity="dark")
    np.testing.assert_array_equal(bright.track, dark.track)
    gray = dark.frames[..., 0].astype(float)
    x, y = np.round(dark.track[0]).astype(int)
    assert gray[0, y - 1 : y + 2, x - 1 : x + 2].mean() < np.median(gray[0]) - 25
    with pytest.raises(ValueError, match="polarity"):
        _clip(0.8, 9, polarity="grey")


def test_a_measured_track_is_matched_to_its_true_cell(recording):
    cell_id = max(
        recording.tracks, key=lambda i: np.isfinite(recording.tracks[i]).sum()
    )
    noisy = recording.cells[cell_id].path.centers[4:14] + np.random.default_rng(
        0
    ).normal(0, 1.0, (10, 2))
    assert recording.match_track(noisy, frame_start=4)[0] == cell_id
    far = noisy + 500.0
    assert recording.match_track(far, frame_start=4)[0] is None
    with pytest.raises(ValueError, match="outside the recording"):
        recording.match_track(noisy, frame_start=15)
