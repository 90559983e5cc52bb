import numpy as np
import pytest

from video.io import (
    CorruptVideo,
    EmptyVideo,
    NotAVideo,
    TooLarge,
    VideoError,
    encode_mp4,
    iter_frames,
    mp4_top_level_boxes,
    probe,
)


def _frames(t=6, h=33, w=41, c=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (t, h, w, c) if c else (t, h, w)
    return rng.integers(0, 255, size=shape, dtype=np.uint8)


def test_encode_mp4_decodes_as_h264_yuv420p_with_all_frames(tmp_path):
    import av

    data = encode_mp4(_frames(t=16, h=32, w=48), fps=15.0)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(15.0)
        assert sum(1 for _ in container.decode(stream)) == 16


def test_encode_mp4_puts_moov_before_mdat_for_faststart():
    boxes = mp4_top_level_boxes(encode_mp4(_frames(), fps=15.0))
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")


def test_encode_mp4_pads_odd_sizes_and_accepts_grey(tmp_path):
    path = tmp_path / "grey.mp4"
    path.write_bytes(encode_mp4(_frames(t=4, h=33, w=41, c=0), fps=20.0))
    info = probe(path)
    assert (info.width, info.height, info.n_frames) == (42, 34, 4)
    assert info.codec == "h264"
    assert info.fps == pytest.approx(20.0)


def test_encode_mp4_keeps_content_close_to_the_input(tmp_path):
    frames = np.zeros((8, 64, 64, 3), dtype=np.uint8)
    frames[:, 16:48, 16:48] = 200
    path = tmp_path / "square.mp4"
    path.write_bytes(encode_mp4(frames, fps=15.0))
    decoded = np.stack(list(iter_frames(path, gray=True)))
    assert decoded.shape == (8, 64, 64)
    assert abs(float(decoded[:, 20:44, 20:44].mean()) - 200) < 6
    assert float(decoded[:, :10, :10].mean()) < 6


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.float32)]
)
def test_encode_mp4_rejects_empty_or_non_uint8_frames(bad):
    with pytest.raises(ValueError):
        encode_mp4(bad, fps=15.0)


def test_encode_mp4_rejects_non_positive_fps():
    with pytest.raises(ValueError, match="fps"):
        encode_mp4(_frames(), fps=0)


def test_iter_frames_streams_rgb_and_grey(tmp_path):
    path = tmp_path / "c.mp4"
    path.write_bytes(encode_mp4(_frames(t=5, h=32, w=48), fps=15.0))
    rgb = list(iter_frames(path))
    grey = list(iter_frames(path, gray=True))
    assert len(rgb) == len(grey) == 5
    assert rgb[0].shape == (32, 48, 3) and rgb[0].dtype == np.uint8
    assert grey[0].shape == (32, 48)


def test_probe_rejects_a_text_file_as_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(NotAVideo):
        probe(path)
    with pytest.raises(NotAVideo):
        list(iter_frames(path))


def test_probe_rejects_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyVideo):
        probe(empty)
    with pytest.raises(VideoError, match="does not exist"):
        probe(tmp_path / "missing.mp4")


def test_truncated_file_is_reported_as_corrupt(tmp_path):
    data = encode_mp4(_frames(t=30, h=64, w=64), fps=15.0)
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptVideo, match="truncated"):
        list(iter_frames(path))


def test_probe_enforces_size_and_length_limits(tmp_path):
    path = tmp_path / "c.mp4"
    path.write_bytes(encode_mp4(_frames(t=5, h=32, w=48), fps=15.0))
    with pytest.raises(TooLarge, match="pixels"):
        probe(path, max_pixels=100)
    with pytest.raises(TooLarge, match="frames"):
        probe(path, max_frames=3)


def test_probe_reads_an_avi_written_by_opencv(tmp_path):
    import cv2

    path = tmp_path / "rec.avi"
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (64, 48), True
    )
    for frame in _frames(t=7, h=48, w=64):
        writer.write(frame)
    writer.release()
    info = probe(path)
    assert (info.width, info.height, info.n_frames) == (64, 48, 7)
    assert info.fps == pytest.approx(15.0)
    assert len(list(iter_frames(path, gray=True))) == 7


def test_iter_frames_falls_back_to_opencv_when_ffmpeg_has_no_decoder(
    tmp_path, monkeypatch
):
    from video import io as video_io

    path = tmp_path / "c.mp4"
    path.write_bytes(encode_mp4(_frames(t=3, h=32, w=48), fps=15.0))

    def no_decoder(path, *, gray):
        raise video_io.UnsupportedCodec("no decoder")
        yield  # pragma: no cover

    monkeypatch.setattr(video_io, "_iter_frames_av", no_decoder)
    frames = list(video_io.iter_frames(path, gray=True))
    assert len(frames) == 3 and frames[0].shape == (32, 48)


def test_probe_asks_opencv_when_ffmpeg_has_no_decoder(tmp_path, monkeypatch):
    from video import io as video_io

    path = tmp_path / "c.mp4"
    path.write_bytes(encode_mp4(_frames(t=5, h=32, w=48), fps=15.0))

    def no_decoder(path, **kwargs):
        raise video_io.UnsupportedCodec("no decoder")

    monkeypatch.setattr(video_io, "_probe_av", no_decoder)
    info = video_io.probe(path)
    assert (info.width, info.height, info.n_frames) == (48, 32, 5)
    with pytest.raises(TooLarge):
        video_io.probe(path, max_frames=2)
    text = tmp_path / "t.mp4"
    text.write_text("no video here")
    with pytest.raises(video_io.UnsupportedCodec):
        video_io.probe(text)
