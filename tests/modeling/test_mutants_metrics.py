"""Metrics pinned where mutation testing found them loose (docs/mutation.md), on
hand-computed values."""

import numpy as np
import pytest

from modeling import metrics


def test_balanced_accuracy_averages_each_true_classs_recall():
    # class 0: 1 of 2 right; class 1: 2 of 3 right -> (1/2 + 2/3) / 2 = 7/12
    t = np.array([0, 0, 1, 1, 1])
    p = np.array([0, 1, 1, 1, 0])
    assert metrics.balanced_accuracy(t, p) == pytest.approx(7 / 12)


TARGET = np.array(
    [
        [4, 1, 0, 0, 0],
        [0, 3, 2, 0, 0],
        [0, 0, 1, 3, 1],
        [1, 1, 1, 1, 1],
        [0, 0, 0, 2, 3],
    ]
)


def test_the_chance_floor_averages_metrics_all_over_seeded_permutations():
    q = TARGET / TARGET.sum(1, keepdims=True)
    rng = np.random.default_rng(0)
    rows = [metrics.metrics_all(q[rng.permutation(5)], q) for _ in range(20)]
    floor = metrics.chance_metrics(TARGET)
    assert set(floor) == set(rows[0])
    for key in ("emd", "hi", "balanced_accuracy_4th", "strict_balanced_accuracy_4th"):
        assert floor[key] == pytest.approx(np.mean([r[key] for r in rows]), abs=1e-12)
    assert metrics.chance_metrics(TARGET, seed=1)["emd"] != floor["emd"]


def test_one_permutation_is_a_chance_floor_too():
    q = TARGET / TARGET.sum(1, keepdims=True)
    one = metrics.chance_metrics(TARGET, n_permutations=1, seed=3)
    perm = np.random.default_rng(3).permutation(5)
    assert one == metrics.metrics_all(q[perm], q)


def test_a_bad_target_for_the_chance_floor_is_named_target():
    with pytest.raises(ValueError, match=r"^target: expected shape \(n_clips, 5\)"):
        metrics.chance_metrics(np.ones((2, 4)))


def test_within_one_accuracy_counts_a_mode_two_grades_off_as_wrong():
    target = np.array([[1.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0]])
    pred = np.array([[0, 1.0, 0, 0, 0], [0, 0, 1.0, 0, 0], [0, 0, 0, 0, 1.0]])
    assert metrics.within_one_accuracy(pred, target) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "function", [metrics.nth_grade_tied, metrics.nth_grade, metrics.grade_mode]
)
def test_a_bad_distribution_for_a_grade_rank_is_named_dist(function):
    args = () if function is metrics.grade_mode else (1,)
    with pytest.raises(ValueError, match=r"^dist: expected shape \(n_clips, 5\)"):
        function(np.ones((2, 4)), *args)


def test_the_tied_set_takes_grades_within_1e_9_absolute_and_no_relative_slack():
    def tied(a: float, b: float) -> list[bool]:
        return metrics.nth_grade_tied(np.array([[a, b, 0.0, 0.0, 0.0]]), 1)[0].tolist()

    assert tied(0.5 + 2e-10, 0.5 - 2e-10) == [True, True, False, False, False]
    # 5e-9 apart: outside 1e-9 (numpy's default atol, 1e-8, would tie them)
    assert tied(0.5 + 2.5e-9, 0.5 - 2.5e-9) == [True, False, False, False, False]
    # 3e-6 apart: numpy's default rtol (1e-5 of 0.5) would tie them
    assert tied(0.5 + 1.5e-6, 0.5 - 1.5e-6) == [True, False, False, False, False]


def test_cross_entropy_per_clip_is_positive_in_nats():
    target = np.array([[1.0, 0, 0, 0, 0], [0, 0.5, 0.5, 0, 0]])
    pred = np.array([[0.2] * 5, [0, 0.25, 0.75, 0, 0]])
    # -ln 0.2 = ln 5; -(0.5 ln 0.25 + 0.5 ln 0.75)
    want = [np.log(5), -(0.5 * np.log(0.25) + 0.5 * np.log(0.75))]
    assert metrics.ce_per_clip(pred, target).tolist() == pytest.approx(want)


def test_a_target_that_does_not_match_the_frames_is_refused_counting_them():
    message = (
        r"^pred \(2, 3, 5\) holds 3 predictions for each of 2 clips; "
        r"target must be \(2, 5\), got \(3, 5\)$"
    )
    with pytest.raises(ValueError, match=message):
        metrics.frames_flatten(np.full((2, 3, 5), 0.2), np.full((3, 5), 0.2))


def test_a_bad_prediction_or_target_is_named_as_such():
    good, bad = np.full((2, 5), 0.2), np.ones((2, 4))
    with pytest.raises(ValueError, match=r"^pred: expected shape \(n_clips, 5\)"):
        metrics.mse_per_clip(bad, good)
    with pytest.raises(ValueError, match=r"^target: expected shape \(n_clips, 5\)"):
        metrics.mse_per_clip(good, bad)


def test_float32_predictions_are_scored_in_float64():
    # softmax outputs arrive as float32: the metrics still compute in float64
    pred = np.array([[0.1, 0.2, 0.3, 0.15, 0.25], [0.6, 0.1, 0.1, 0.1, 0.1]])
    votes = np.array([[1.0, 2, 0, 0, 0], [0, 0, 1, 5, 1]])  # thirds and sevenths
    for score in (metrics.mse_per_clip, metrics.emd_per_clip):
        got = score(pred.astype(np.float32), votes.astype(np.float32))
        want = score(pred.astype(np.float32).astype(np.float64), votes)
        assert got.dtype == np.float64
        assert got.tolist() == want.tolist()
