"""Accuracy floors on the real developer data (../shared/data/real), a little below
what benchmarks/detection.py measures: SVIA mean AP@0.5 0.80, DeepSperm AP@0.5
0.71, template-tracker median error 1.2 px."""

import numpy as np

from video.detection import DETECTOR_PRESETS
from video.realdata import (
    detector_evaluate,
    hand_tracked_pairs,
    hand_tracked_points,
    svia_annotations,
    svia_frames,
    svia_video_stems,
    template_errors,
    voc_boxes_read,
    yolo_boxes_read,
    yolo_frame_folders,
    yolo_frames,
)


def test_voc_reader_parses_boxes_and_classes(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text(
        "<annotation><object><name>S</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
        "<xmax>11</xmax><ymax>12</ymax></bndbox></object><object><name>Impurity"
        "</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>9</xmax><ymax>9</ymax>"
        "</bndbox></object></annotation>"
    )
    boxes = voc_boxes_read(xml)
    assert boxes.labels == ("S", "Impurity")
    np.testing.assert_array_equal(boxes.of_class("S"), [[1, 2, 11, 12]])


def test_yolo_reader_converts_normalised_centres_to_pixels(tmp_path):
    txt = tmp_path / "f.txt"
    txt.write_text("0 0.5 0.25 0.1 0.2\n\n")
    boxes = yolo_boxes_read(txt, width=200, height=100)
    np.testing.assert_allclose(boxes.boxes, [[90, 15, 110, 35]])


def test_hand_tracked_reader_marks_blank_rows_as_nan(tmp_path):
    csv = tmp_path / "h.csv"
    csv.write_text("\ufeffframe,1x,1y\n0,5,6\n1,,\n")
    points = hand_tracked_points(csv)
    assert points.shape == (2, 2) and np.isnan(points[1]).all()


def test_svia_annotations_map_to_zero_based_frames(shared_data):
    folder = shared_data / "svia_sperm_videos"
    stems = svia_video_stems(folder)
    assert stems, "no annotated SVIA video found"
    for stem in stems:
        ann = svia_annotations(folder / "annotations_subsetA", stem)
        assert min(ann) == 0  # FFFF is 1-based in the file names
        assert sorted(ann) == list(range(len(ann)))
        assert len(ann[0].of_class("S")) > 10


def test_svia_detection_ap_floor(shared_data):
    folder = shared_data / "svia_sperm_videos"
    config = DETECTOR_PRESETS["svia"]
    aps = [
        detector_evaluate(svia_frames(folder, stem), config=config)[0]
        for stem in svia_video_stems(folder)
    ]
    assert aps
    assert np.mean(aps) >= 0.75
    assert min(aps) >= 0.65


def test_deepsperm_detection_ap_floor(shared_data):
    folders = yolo_frame_folders(shared_data / "deepsperm_bull_frames")
    assert folders
    frames = [frame for folder in folders for frame in yolo_frames(folder)]
    ap, _ = detector_evaluate(frames, config=DETECTOR_PRESETS["deepsperm"])
    assert ap >= 0.65


def test_template_tracker_median_error_on_hand_tracked_clip(shared_data):
    pairs = hand_tracked_pairs(shared_data / "tracked_single_sperm_clips")
    assert pairs
    errors = np.concatenate([template_errors(clip, csv) for clip, csv in pairs])
    assert len(errors) >= 50
    assert np.median(errors) <= 2.0


def test_real_svia_recording_becomes_clips_that_follow_annotated_sperm(shared_data):
    from video.clips import span_indices
    from video.pipeline import PipelineConfig, recording_process_file

    folder = shared_data / "svia_sperm_videos"
    result = recording_process_file(
        folder / "videos" / "S_0001.mp4",
        config=PipelineConfig(max_clips=5, encode_mp4=False),
    )
    annotations = svia_annotations(folder / "annotations_subsetA", "S_0001")
    assert result.n_frames == 45 and len(result.clips) == 5
    for clip in result.clips:
        cut = clip.clip
        assert cut.frames.shape == (16, 150, 150, 3)
        errors = []
        # clip frame k is source frame frame_start + offsets[k] (every 2nd at 30 fps)
        offsets = span_indices(cut.source_fps)
        assert cut.source_fps == 30.0 and offsets[1] == 2
        for k, point in enumerate(cut.track):
            boxes = annotations[cut.frame_start + offsets[k]].of_class("S")
            centres = np.c_[
                (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
            ]
            errors.append(np.min(np.linalg.norm(centres - point, axis=1)))
        assert np.median(errors) < 4.0  # measured 0.7-3.1 px
