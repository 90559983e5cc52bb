import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- in range by construction, never an exception ------------------------------

_COORD = st.floats(-5000, 5000, allow_nan=False, allow_infinity=False)
_POINT = st.one_of(st.tuples(_COORD, _COORD), st.just((float("nan"), float("nan"))))


def _check(k, n_valid: int) -> None:
    for name in ("lin", "str", "wob"):
        assert 0.0 <= getattr(k, name) <= 1.0, (name, k)
    figures = (k.vcl, k.vsl, k.vap, k.alh, k.alh_max, k.bcf)
    assert all(np.isfinite(figures)) and min(figures) >= 0.0, k
    assert k.n_points == n_valid and k.short_track == (n_valid < 5)
    # the straight line is shortest, the average path between the two
    assert k.vsl <= k.vap * (1 + 1e-9) + 1e-9 and k.vap <= k.vcl * (1 + 1e-9) + 1e-9


@given(
    track=st.lists(_POINT, min_size=0, max_size=60),
    fps=st.floats(1.0, 240.0),
    um_per_px=st.one_of(st.none(), st.floats(0.05, 5.0)),
)
@settings(max_examples=400, deadline=None, derandomize=True)
def test_any_track_gives_figures_in_range(track, fps, um_per_px):
    points = np.array(track, dtype=float).reshape(-1, 2)
    valid = int(np.isfinite(points).all(axis=1).sum())
    k = kinematics_compute(track=points, fps=fps, um_per_px=um_per_px)
    # gaps between valid points are interpolated, so they count as points
    _check(k, len(points) if valid >= 2 else valid)


def test_the_audits_three_thousand_random_tracks():
    # The reproduction: random walks of 3..39 points gave STR > 1 on 531,
    # WOB > 1 on 48 and an exception on 93 (a 5-point track).
    rng = np.random.default_rng(7)
    for _ in range(3000):
        n = int(rng.integers(3, 40))
        step = rng.normal(0, rng.uniform(0.1, 6), (n, 2)) + rng.normal(0, 3, 2)
        track = 100 + np.cumsum(step, axis=0)
        _check(kinematics_compute(track=track, fps=15.0), n)


def test_five_point_track_has_an_average_path_of_its_endpoints_and_centre():
    track = np.array([[0, 0], [1, 1], [2, 0], [3, 1], [4, 0]], dtype=float)
    k = kinematics_compute(track=track, fps=4.0)  # D = 1 s
    # average path p0 -> mean (2, 0.4) -> p4: 2 * sqrt(4 + 0.16)
    assert k.vap == pytest.approx(2 * np.sqrt(4.16))
    assert k.vsl == pytest.approx(4.0) and k.vcl == pytest.approx(4 * np.sqrt(2))
    assert k.str == pytest.approx(4.0 / (2 * np.sqrt(4.16)))
    assert not k.short_track and k.n_points == 5


def test_short_tracks_are_marked_and_use_the_straight_line():
    k = kinematics_compute(track=[[0, 0], [3, 4], [6, 8]], fps=2.0)
    assert k.short_track and k.n_points == 3
    assert k.vsl == k.vap == pytest.approx(10.0) and k.str == 1.0
    one = kinematics_compute(track=[[5, 5]], fps=15.0)
    assert one.short_track and one.vcl == 0.0 and one.motility_class == "immotile"


def test_real_hand_tracked_points_give_figures_in_range(shared_data):
    csv = (
        shared_data
        / "tracked_single_sperm_clips/hand_tracked/sample1_vid1_sperm3_id3.csv"
    )
    points = np.genfromtxt(csv, delimiter=",", skip_header=1)[:, 1:3]
    points = points[: np.flatnonzero(np.isfinite(points).all(axis=1))[-1] + 1]
    assert len(points) >= 50  # hand-tracked until the sperm was lost (gaps = NaN)
    for length in range(1, 41):  # every window length, sliding along the track
        for start in range(0, len(points) - length + 1, 7):
            window = points[start : start + length]
            valid = int(np.isfinite(window).all(axis=1).sum())
            n = length if valid >= 2 else valid
            _check(kinematics_compute(track=window, fps=20.0), n)
    whole = kinematics_compute(track=points, fps=20.0)
    _check(whole, len(points))
    assert whole.vcl > 0 and whole.motility_class != "immotile"  # labelled "p"
