import numpy as np
import pytest

from video.detection import DETECTOR_PRESETS
from video.io import NotAVideo, encode_mp4
from video.pipeline import (
    PipelineConfig,
    first_frame_detections,
    recording_process,
    recording_process_file,
)


@pytest.fixture(scope="module")
def recording():
    from video.synthetic import render_recording

    return render_recording(
        n_sperm=15, n_frames=24, width=320, height=240, fps=15.0,
        rng=np.random.default_rng(5),
    )  # fmt: skip


def _config(**kw):
    defaults = dict(
        clip_frames=8, clip_size=48, max_clips=3,
        detector=DETECTOR_PRESETS["synthetic"], encode_mp4=False,
    )  # fmt: skip
    defaults.update(kw)
    return PipelineConfig(**defaults)


def test_automatic_mode_cuts_clips_that_follow_real_cells(recording):
    calls = []
    result = recording_process(
        recording.iter_frames(), fps=15.0, um_per_px=0.5, config=_config(),
        progress=lambda done, fps: calls.append((done, fps)),
    )  # fmt: skip
    assert result.n_frames == 24 and 1 <= len(result.clips) <= 3
    assert calls[-1][0] == 24 and all(fps > 0 for _, fps in calls)
    qualities = [c.quality for c in result.clips]
    assert qualities == sorted(qualities, reverse=True)
    for clip in result.clips:
        cut = clip.clip
        assert cut.frames.shape == (8, 48, 48, 3) and cut.frames.dtype == np.uint8
        window = slice(cut.frame_start, cut.frame_start + 8)
        errors = [
            np.nanmedian(np.linalg.norm(truth[window] - cut.track, axis=1))
            for truth in recording.tracks.values()
            if np.isfinite(truth[window]).any()
        ]
        assert min(errors) < 3.0  # the clip follows one true cell
        assert clip.kinematics.unit == "um/s" and clip.speed == clip.kinematics.vcl


def test_max_clips_bounds_the_kept_clips(recording):
    result = recording_process(
        recording.iter_frames(), fps=15.0, config=_config(max_clips=1)
    )
    assert len(result.clips) == 1 and result.n_tracks >= 2


def test_manual_targets_are_followed_from_the_first_frame(recording):
    first = recording.tracks
    targets = [tuple(p[0]) for p in first.values() if np.isfinite(p[:8]).all()][:2]
    result = recording_process(
        recording.iter_frames(), fps=15.0, targets=targets,
        config=_config(encode_mp4=True),
    )  # fmt: skip
    assert len(result.clips) == len(targets) and result.n_frames == 8
    for clip, target in zip(result.clips, targets):
        assert tuple(clip.clip.track[0]) == pytest.approx(target)
        assert clip.video_bytes[4:8] == b"ftyp"


def test_manual_mode_on_a_too_short_recording_says_so(recording):
    frames = list(recording.iter_frames())[:4]
    with pytest.raises(ValueError, match="a clip of 8 frames at 15 fps needs 8"):
        recording_process(frames, fps=15.0, targets=[(10, 10)], config=_config())


def test_file_processing_probes_first_and_rejects_non_videos(tmp_path, recording):
    bad = tmp_path / "x.mp4"
    bad.write_text("not a video" * 20)
    with pytest.raises(NotAVideo):
        recording_process_file(bad)
    path = tmp_path / "rec.mp4"
    path.write_bytes(encode_mp4(np.stack(list(recording.iter_frames())), fps=15.0))
    result = recording_process_file(path, config=_config())
    assert result.n_frames == 24 and len(result.clips) >= 1
    frame, detections = first_frame_detections(
        path, config=DETECTOR_PRESETS["synthetic"]
    )
    assert frame.shape == (240, 320, 3) and len(detections) >= 3


def test_pipeline_config_rejects_nonsense():
    with pytest.raises(ValueError, match="clip_frames"):
        PipelineConfig(clip_frames=1)
    with pytest.raises(ValueError, match="max_clips"):
        PipelineConfig(max_clips=0)


class _TruthDetector:
    """Stands in for a learned detector: any object with detect(frame)."""

    def __init__(self, recording):
        self.tracks = list(recording.tracks.values())
        self.t = -1

    def detect(self, frame):
        from video.detection import Detections

        self.t += 1
        pts = np.array(
            [tr[self.t] for tr in self.tracks if np.isfinite(tr[self.t]).all()]
        )
        boxes = np.c_[pts - 5, pts + 5].astype(np.float32)
        return Detections(boxes=boxes, scores=np.full(len(pts), 60.0, np.float32))


def test_any_detector_with_the_protocol_can_replace_the_classical_one(recording):
    result = recording_process(
        recording.iter_frames(), fps=15.0, config=_config(max_clips=3),
        detector=_TruthDetector(recording),
    )  # fmt: skip
    assert len(result.clips) == 3
    assert all(0.75 <= c.quality <= 1.0 for c in result.clips)


def test_prefetched_frames_arrive_in_order_and_errors_are_raised_after_them():
    from video.io import CorruptVideo
    from video.pipeline import frames_prefetched

    def frames():
        for i in range(5):
            yield np.full((2, 2), i, np.uint8)
        raise CorruptVideo("decoding failed after 5 frames")

    got = []
    with pytest.raises(CorruptVideo, match="after 5 frames"):
        for frame in frames_prefetched(frames(), depth=2):
            got.append(int(frame[0, 0]))
    assert got == [0, 1, 2, 3, 4]


def test_stopping_early_ends_the_prefetch_thread():
    import threading

    from video.pipeline import frames_prefetched

    def endless():
        while True:
            yield np.zeros((2, 2), np.uint8)

    stream = frames_prefetched(endless(), depth=2)
    next(stream)
    stream.close()
    assert not any(t.name == "frame-prefetch" for t in threading.enumerate())
