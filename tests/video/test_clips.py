import numpy as np
import pytest

from video.clips import CutClip, clip_cut, crop_centred
from video.io import iter_frames


def _gradient(h=100, w=120):
    y, x = np.mgrid[0:h, 0:w]
    return ((x + 2 * y) % 256).astype(np.uint8)


def test_crop_inside_the_frame_is_the_exact_window():
    frame = _gradient()
    crop = crop_centred(frame, centre=(60, 50), size=21)
    np.testing.assert_array_equal(crop, frame[40:61, 50:71])


def test_crop_at_the_border_is_neutral_padded_by_default():
    frame = _gradient()
    crop = crop_centred(frame, centre=(2, 50), size=11)
    # columns 0-2 lie outside the frame: the frame's median, never a mirror
    assert (crop[:, :3] == int(np.round(np.median(frame)))).all()
    np.testing.assert_array_equal(crop[:, 3:], frame[45:56, 0:8])


def test_crop_at_the_border_can_still_be_reflect_padded():
    frame = _gradient()
    crop = crop_centred(frame, centre=(2, 50), size=11, pad="reflect")
    assert crop.shape == (11, 11)
    # Column 3 of the crop is frame column 0; column 2 mirrors column 1.
    np.testing.assert_array_equal(crop[:, 3], frame[45:56, 0])
    np.testing.assert_array_equal(crop[:, 2], frame[45:56, 1])


def test_crop_can_pad_with_a_constant():
    crop = crop_centred(
        _gradient(), centre=(0, 0), size=10, pad="constant", pad_value=7
    )
    assert (crop[:5, :5] == 7).all() and crop.shape == (10, 10)


def test_crop_entirely_outside_is_filled():
    crop = crop_centred(_gradient(), centre=(-500, -500), size=8, pad_value=3)
    assert crop.shape == (8, 8) and (crop == 3).all()


def test_clip_cut_gives_t_by_s_by_s_by_3_centred_on_the_track():
    frames = [_gradient() for _ in range(4)]
    track = np.array([[30, 30], [40, 35], [50, 40], [60, 45]], float)
    clip = clip_cut(frames, track=track, size=16)
    assert clip.shape == (4, 16, 16, 3) and clip.dtype == np.uint8
    np.testing.assert_array_equal(clip[2, :, :, 0], frames[2][32:48, 42:58])


def test_clip_cut_rejects_mismatched_or_gappy_tracks():
    frames = [_gradient() for _ in range(3)]
    with pytest.raises(ValueError, match="one track point per frame"):
        clip_cut(frames, track=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="gaps"):
        clip_cut(frames, track=np.array([[1, 1], [np.nan, 2], [3, 3]]))


def test_cut_clip_encodes_a_playable_mp4(tmp_path):
    frames = [_gradient() for _ in range(16)]
    track = np.tile([[60.0, 50.0]], (16, 1))
    clip = CutClip(frames=clip_cut(frames, track=track, size=150), track=track,
                   frame_start=5, fps=15.0)  # fmt: skip
    assert clip.frame_end == 20
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip.mp4())
    decoded = list(iter_frames(path))
    assert len(decoded) == 16 and decoded[0].shape == (150, 150, 3)


def test_a_real_svia_frame_near_the_border_shows_no_mirrored_twin(shared_data):
    from video.io import iter_frames

    path = shared_data / "svia_sperm_videos" / "videos" / "S_0001.mp4"
    frame = next(iter(iter_frames(path)))
    crop = crop_centred(frame, centre=(10.0, 60.0), size=150)
    outside = crop[:, : 150 // 2 - 10]  # the part left of the frame's edge
    median = np.round(np.median(frame.reshape(-1, 3), axis=0))
    assert (outside == median.astype(np.uint8)).all()
    mirrored = crop_centred(frame, centre=(10.0, 60.0), size=150, pad="reflect")
    assert mirrored[:, : 150 // 2 - 10].std() > 1  # what experts used to see
