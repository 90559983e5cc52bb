"""Clips cover a fixed span of motion whatever the recording's frame rate:
16 frames at 15 fps (about 1.07 s), the source frames nearest in time."""

import numpy as np
import pytest

from video.clips import span_indices
from video.pipeline import PipelineConfig, recording_process


def test_span_indices_by_hand():
    assert span_indices(15.0).tolist() == list(range(16))
    assert span_indices(30.0).tolist() == list(range(0, 31, 2))
    assert span_indices(60.0).tolist() == list(range(0, 61, 4))
    # 20 fps: times i/15 s are source frames 4i/3, nearest (ties later)
    assert span_indices(20.0).tolist() == [
        0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 19, 20
    ]  # fmt: skip
    # 25 fps: 5i/3
    assert span_indices(25.0).tolist() == [
        0, 2, 3, 5, 7, 8, 10, 12, 13, 15, 17, 18, 20, 22, 23, 25
    ]  # fmt: skip
    assert span_indices(30.0, clip_fps=None).tolist() == list(range(16))
    with pytest.raises(ValueError):
        span_indices(0.0)


def _numbered_frames(n: int, size: int = 96) -> list[np.ndarray]:
    """Frame k: background grey 20 + k (its number), a dark cell at the centre."""
    frames = []
    yy, xx = np.mgrid[:size, :size]
    cell = (xx - size / 2) ** 2 / 36 + (yy - size / 2) ** 2 / 16 <= 1
    for k in range(n):
        frame = np.full((size, size, 3), 20 + k, dtype=np.uint8)
        frame[cell] = 0
        frames.append(frame)
    return frames


@pytest.mark.parametrize("fps", [15.0, 20.0, 25.0, 30.0, 60.0])
def test_a_clip_spans_the_same_time_at_every_source_rate(fps):
    frames = _numbered_frames(80)
    config = PipelineConfig(clip_size=32, encode_mp4=False)
    result = recording_process(frames, fps=fps, targets=[(48.0, 48.0)], config=config)
    [item] = result.clips
    cut = item.clip
    assert len(cut.frames) == 16 and cut.fps == 15.0  # what experts and model see
    assert cut.source_fps == fps and cut.stride == pytest.approx(fps / 15.0)
    # the corner pixel carries the source frame's number: the nearest in time
    shown = [int(f[0, 0, 0]) - 20 for f in cut.frames]
    assert shown == span_indices(fps).tolist()
    assert (shown[-1] - shown[0]) / fps == pytest.approx(15 / 15.0, abs=0.5 / fps)
    assert cut.span == shown[-1] + 1 and cut.frame_end == shown[-1]
    assert len(cut.track) == 16
    # reading stops once the span is covered
    assert result.n_frames == shown[-1] + 1


def test_a_recording_shorter_than_the_span_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="needs 31 at its 30 fps"):
        recording_process(
            _numbered_frames(20),
            fps=30.0,
            targets=[(48.0, 48.0)],
            config=PipelineConfig(clip_size=32, encode_mp4=False),
        )


def test_a_target_at_the_frame_edge_is_not_cut():
    config = PipelineConfig(clip_size=32, encode_mp4=False)
    frames = _numbered_frames(20)
    # a dark cell hugging the left edge
    for frame in frames:
        frame[40:56, 0:4] = 0
    with pytest.raises(ValueError, match="within 5 px of the frame's edge"):
        recording_process(frames, fps=15.0, targets=[(2.0, 48.0)], config=config)
    both = recording_process(
        frames, fps=15.0, targets=[(2.0, 48.0), (48.0, 48.0)], config=config
    )
    assert len(both.clips) == 1 and both.clips[0].clip.track[0][0] == 48.0
