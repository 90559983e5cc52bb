import numpy as np
import pytest

from video.kinematics import average_path, kinematics_compute


def test_straight_line_has_equal_velocities_and_unit_ratios():
    t = np.arange(16, dtype=float)
    track = np.c_[10 + 4 * t, 20 + 3 * t]  # 5 px per frame
    k = kinematics_compute(track=track, fps=15.0)
    assert k.vcl == pytest.approx(75.0) and k.vsl == pytest.approx(75.0)
    assert k.vap == pytest.approx(75.0)
    assert k.lin == pytest.approx(1.0) and k.str == pytest.approx(1.0)
    assert k.wob == pytest.approx(1.0)
    assert k.alh == pytest.approx(0.0, abs=1e-9) and k.bcf == 0.0
    assert k.unit == "px/s" and k.scale_assumed


def test_micrometres_per_pixel_scale_the_speeds():
    t = np.arange(16, dtype=float)
    track = np.c_[4 * t, 3 * t]
    k = kinematics_compute(track=track, fps=15.0, um_per_px=0.5)
    assert k.vcl == pytest.approx(37.5) and k.unit == "um/s"
    assert k.motility_class == "progressive"


def test_zigzag_path_has_lateral_amplitude_and_beat_cross_frequency():
    t = np.arange(31, dtype=float)
    # Forward 3 px/frame, lateral +-2 px alternating every frame.
    track = np.c_[3 * t, 2 * np.where(t % 2 == 0, 1.0, -1.0)]
    k = kinematics_compute(track=track, fps=15.0)
    assert k.vcl > k.vap > 0
    assert k.lin < 1 and k.wob < 1
    # Deviation from the 5-point mean: +-(2 - 0.4) = +-1.6 -> ALH = 3.2 px.
    assert k.alh == pytest.approx(3.2, abs=0.1)
    # Every frame crosses: 26 crossings over (27 - 1) frames at 15 fps = 15 Hz.
    assert k.bcf == pytest.approx(15.0, abs=0.6)


def test_circling_cell_is_non_progressive():
    t = np.arange(16, dtype=float)
    angle = t * 2 * np.pi / 8
    track = np.c_[50 + 10 * np.cos(angle), 50 + 10 * np.sin(angle)]
    k = kinematics_compute(track=track, fps=15.0, um_per_px=0.5)
    assert k.vcl > 5 and k.str < 0.8
    assert k.motility_class == "non-progressive"


def test_still_cell_is_immotile():
    track = np.tile([[40.0, 40.0]], (16, 1)) + np.random.default_rng(0).normal(
        0, 0.05, (16, 2)
    )
    k = kinematics_compute(track=track, fps=15.0, um_per_px=0.5)
    assert k.motility_class == "immotile"


def test_gaps_are_interpolated_and_bad_arguments_rejected():
    t = np.arange(10, dtype=float)
    track = np.c_[2 * t, 0 * t]
    track[4] = np.nan
    assert kinematics_compute(track=track, fps=10.0).vcl == pytest.approx(20.0)
    with pytest.raises(ValueError, match="fps"):
        kinematics_compute(track=track, fps=0)
    with pytest.raises(ValueError, match="um_per_px"):
        kinematics_compute(track=track, fps=10.0, um_per_px=-1)


def test_average_path_is_the_five_point_running_mean():
    pts = np.c_[np.arange(7.0), np.array([0, 5, 0, 5, 0, 5, 0.0])]
    avg = average_path(pts)
    assert avg.shape == (3, 2)
    np.testing.assert_allclose(avg[0], [2.0, 2.0])


def test_to_dict_has_the_keys_the_platform_stores():
    k = kinematics_compute(track=np.zeros((16, 2)), fps=15.0)
    assert {"vcl", "vsl", "vap", "lin", "str", "wob", "alh", "bcf",
            "motility_class"} <= set(k.to_dict())  # fmt: skip
