import numpy as np
import pytest

from video.clips import CutClip, FrameGreys, clip_cut, crop_centred, frame_grey
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


def _old_neutral_crop(frame, *, centre, size):
    """The padded crop as the implementation before the per-frame grey wrote it:
    np.median over the whole frame, rounded, under the frame's own pixels."""
    grey = np.round(np.median(frame.reshape(-1, *frame.shape[2:]), axis=0))
    out = np.empty((size, size) + frame.shape[2:], dtype=frame.dtype)
    out[...] = grey.astype(frame.dtype)
    x0 = int(round(centre[0])) - size // 2
    y0 = int(round(centre[1])) - size // 2
    h, w = frame.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + size, w), min(y0 + size, h)
    out[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = frame[cy0:cy1, cx0:cx1]
    return out


def _noisy_colour_frame(seed, h=97, w=131):
    rng = np.random.default_rng(seed)
    base = rng.normal([120, 90, 160], [25, 40, 10], size=(h, w, 3))
    return base.clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("centre", [(3.0, 40.0), (125.4, 2.6), (-20.0, 90.0)])
def test_neutral_padding_is_the_same_as_the_whole_frame_median(seed, centre):
    frame = _noisy_colour_frame(seed)
    crop = crop_centred(frame, centre=centre, size=41)
    expected = _old_neutral_crop(frame, centre=centre, size=41)
    np.testing.assert_array_equal(crop, expected)


def test_the_padding_grey_of_an_even_count_rounds_the_middle_pair_half_to_even():
    # 4 pixels per channel: the median is the mean of the two middle values.
    frame = np.array(
        [[[10, 20, 0], [120, 121, 9]], [[121, 122, 9], [200, 255, 255]]],
        dtype=np.uint8,
    )
    # channel 0: (120 + 121) / 2 = 120.5 -> 120; channel 1: 121.5 -> 122;
    # channel 2: (9 + 9) / 2 = 9
    np.testing.assert_array_equal(frame_grey(frame), [120, 122, 9])
    expected = np.round(np.median(frame.reshape(-1, 3), axis=0)).astype(np.uint8)
    np.testing.assert_array_equal(frame_grey(frame), expected)


def test_the_padding_grey_of_a_grey_frame_is_one_value():
    frame = _gradient(h=7, w=9)  # odd count: the middle pixel
    assert frame_grey(frame).shape == ()
    assert frame_grey(frame) == np.round(np.median(frame))


def test_clips_cut_from_shared_frames_share_their_greys_and_match_the_median():
    frames = [_noisy_colour_frame(seed) for seed in range(4)]
    tracks = [np.tile([[2.0, 50.0]], (4, 1)), np.tile([[129.0, 95.0]], (4, 1))]
    greys = FrameGreys()
    clips = [clip_cut(frames, track=t, size=31, grey=greys) for t in tracks]
    assert len(greys) == 4  # one grey per frame, for both clips
    for clip, track in zip(clips, tracks):
        for frame, crop, centre in zip(frames, clip, track):
            expected = _old_neutral_crop(frame, centre=tuple(centre), size=31)
            np.testing.assert_array_equal(crop, expected)
    greys.forget(frames[0])
    assert len(greys) == 3


def test_a_crop_inside_the_frame_does_not_ask_for_the_grey():
    def no_grey(frame):
        raise AssertionError("an unpadded crop needs no grey")

    crop = crop_centred(_gradient(), centre=(60, 50), size=21, grey=no_grey)
    assert crop.shape == (21, 21)


def _whole_frame_median(frame):
    median = np.median(frame.reshape(-1, *frame.shape[2:]), axis=0)
    return np.round(median).astype(np.uint8)


@pytest.mark.parametrize("shift", [0, 1, -1, 60])
def test_a_guessed_grey_is_kept_only_where_it_is_the_median(shift):
    frame = _noisy_colour_frame(7)
    exact = _whole_frame_median(frame)
    guess = (exact.astype(int) + [shift, 0, -shift]).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(frame_grey(frame, guess=guess), exact)


def test_a_guess_between_a_middle_pair_of_different_values_is_not_taken():
    # 4 pixels per channel, middle pair 120 and 122: the median is 121, a value
    # no pixel has; the guesses 120 and 122 are each one of the middle values.
    frame = np.array([[[10], [120]], [[122], [200]]], dtype=np.uint8)
    for guess in (120, 121, 122):
        assert frame_grey(frame, guess=np.array([guess], np.uint8)) == [121]


def test_frame_greys_match_the_median_of_each_frame_in_turn():
    # Each grey is the guess for the next frame; frames differ in brightness.
    greys = FrameGreys()
    for seed in range(5):
        frame = np.clip(_noisy_colour_frame(seed).astype(int) + 7 * seed, 0, 255)
        frame = frame.astype(np.uint8)
        np.testing.assert_array_equal(greys(frame), _whole_frame_median(frame))
