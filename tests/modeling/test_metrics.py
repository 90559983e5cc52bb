import numpy as np
import pytest

from modeling import metrics

# Hand-computed example with ties: t1 ties B/C (mode B), t3 ties all grades (mode A).
TARGET = np.array(
    [
        [0.6, 0.4, 0.0, 0.0, 0.0],  # mode A
        [0.0, 0.5, 0.5, 0.0, 0.0],  # mode B (tie with C, lower index wins)
        [0.0, 0.0, 0.0, 0.2, 0.8],  # mode E
        [0.2, 0.2, 0.2, 0.2, 0.2],  # mode A (five-way tie)
    ]
)
PRED = np.array(
    [
        [0.4, 0.6, 0.0, 0.0, 0.0],  # mode B, HI 0.8
        [0.0, 0.5, 0.5, 0.0, 0.0],  # mode B, HI 1.0
        [0.0, 0.0, 0.2, 0.8, 0.0],  # mode D, HI 0.2
        [0.2, 0.2, 0.2, 0.2, 0.2],  # mode A, HI 1.0
    ]
)


def test_grade_mode_breaks_ties_towards_the_lower_grade():
    assert metrics.grade_mode(TARGET).tolist() == [0, 1, 4, 0]
    assert metrics.grade_mode(PRED).tolist() == [1, 1, 3, 0]


def test_nth_grade_ranks_by_descending_votes_with_lower_index_first():
    assert metrics.nth_grade(TARGET, 1).tolist() == [0, 1, 4, 0]
    assert metrics.nth_grade(TARGET, 2).tolist() == [1, 2, 3, 1]
    assert metrics.nth_grade(TARGET, 5).tolist() == [4, 4, 2, 4]
    with pytest.raises(ValueError, match="1..5"):
        metrics.nth_grade(TARGET, 0)


def test_scalar_metrics_match_hand_computed_values():
    m = metrics.metrics_all(PRED, TARGET)
    assert m["hi"] == pytest.approx(0.75)
    assert m["macro_hi"] == pytest.approx((0.9 + 1.0 + 0.2) / 3)
    assert m["mode_accuracy"] == pytest.approx(0.5)
    assert m["within_one_accuracy"] == pytest.approx(1.0)
    assert m["macro_f1"] == pytest.approx(1 / 3)
    assert m["balanced_accuracy_1st"] == pytest.approx(0.5)
    assert m["balanced_accuracy_2nd"] == pytest.approx(0.5)
    assert m["balanced_accuracy_5th"] == pytest.approx(0.5)
    # rows 1 and 3 tie at the top; every row ties at the bottom
    assert m["tie_rate_1st"] == pytest.approx(0.5)
    assert m["tie_rate_5th"] == pytest.approx(1.0)
    assert m["n_clips"] == 4
    assert metrics.emd_per_clip(PRED, TARGET)[0] == pytest.approx(0.04 / 5)
    assert metrics.mse_per_clip(PRED, TARGET)[0] == pytest.approx(0.08 / 5)
    # by hand: CDF gaps 0.2 (row 0) and 0.2, 0.8 (row 2): (0.04 / 5 + 0.68 / 5) / 4
    assert m["emd"] == pytest.approx(0.036)


def test_first_grade_balanced_accuracy_scores_the_most_voted_grade():
    # Prediction gets the most-voted grade right and the least-voted wrong.
    target = np.array([[0.7, 0.2, 0.1, 0.0, 0.0], [0.0, 0.0, 0.1, 0.2, 0.7]])
    pred = np.array([[0.5, 0.0, 0.0, 0.1, 0.4], [0.4, 0.1, 0.0, 0.0, 0.5]])
    m = metrics.metrics_all(pred, target)
    assert m["balanced_accuracy_1st"] == pytest.approx(1.0)
    assert m["balanced_accuracy_5th"] == pytest.approx(0.0)


def test_top_hi_segments_are_percentiles_of_each_true_mode_class():
    table = metrics.top_hi_segments(PRED, TARGET)
    assert set(table) == {"A", "B", "E"}
    # class A holds HIs 0.8 and 1.0: 75th, 50th, 25th percentiles by hand
    assert table["A"]["top25"] == pytest.approx(0.8 + 0.75 * 0.2)
    assert table["A"]["top50"] == pytest.approx(0.9)
    assert table["A"]["top75"] == pytest.approx(0.8 + 0.25 * 0.2)
    assert table["A"]["all"] == pytest.approx(0.9)
    assert table["A"]["n"] == 2
    assert table["E"]["top25"] == table["E"]["top75"] == pytest.approx(0.2)


def test_top75_lies_below_the_class_mean_with_a_lower_tail():
    # The paper's Table 5 reading: Top-75 % can lie below Macro HI. Four clips of
    # mode A with HIs 1, 1, 1 and 0.2: mean 0.8; the 25th percentile by hand:
    # sorted 0.2, 1, 1, 1, position 0.25 * 3 = 0.75 -> 0.2 + 0.75 * 0.8 = 0.8.
    target = np.array([[1.0, 0, 0, 0, 0]] * 4)
    pred = np.array([[1.0, 0, 0, 0, 0]] * 3 + [[0.2, 0.8, 0, 0, 0]])
    row = metrics.top_hi_segments(pred, target)["A"]
    assert row["all"] == pytest.approx(0.8)
    assert row["top75"] == pytest.approx(0.8)
    assert row["top50"] == pytest.approx(1.0) and row["top25"] == pytest.approx(1.0)
    pred[2] = [0.5, 0.5, 0, 0, 0]  # HIs 0.2, 0.5, 1, 1: 25th pct 0.425 < mean 0.675
    row = metrics.top_hi_segments(pred, target)["A"]
    assert row["top75"] == pytest.approx(0.2 + 0.75 * 0.3)
    assert row["top75"] < row["all"] == pytest.approx(0.675)


def test_nth_grade_inside_the_true_tie_counts_as_right():
    target = np.array([[0.5, 0.5, 0, 0, 0], [0.6, 0.4, 0, 0, 0]])
    pred = np.array([[0.3, 0.7, 0, 0, 0], [0.1, 0.1, 0.1, 0.1, 0.6]])
    # 1st grade: clip 0's truth is the tie {A, B}; B is right. Clip 1: A vs E.
    score, ties = metrics.nth_grade_balanced_accuracy(pred, target, 1)
    assert ties == pytest.approx(0.5)
    assert score == pytest.approx(0.5)  # class A (both clips): 1 of 2 right
    # 4th grade: clip 1's truth is D, tied with C and E (no votes); the
    # prediction's 4th grade is C (order E, A, B, C, D): right. Clip 0's truth D
    # (tied with C, E); its prediction's 4th is D: right.
    score, ties = metrics.nth_grade_balanced_accuracy(pred, target, 4)
    assert (score, ties) == (pytest.approx(1.0), pytest.approx(1.0))
    m = metrics.metrics_all(pred, target)
    assert m["balanced_accuracy_4th"] == 1.0 and m["tie_rate_4th"] == 1.0
    assert m["tie_rate_1st"] == 0.5


def test_vote_counts_are_normalised_like_probabilities():
    counts = TARGET * 10
    assert metrics.metrics_all(PRED, counts) == metrics.metrics_all(PRED, TARGET)


def test_perfect_prediction_scores_best():
    m = metrics.metrics_all(TARGET, TARGET)
    assert m["emd"] == m["mse"] == 0.0
    assert m["jsd"] == pytest.approx(0.0, abs=1e-12)
    assert m["hi"] == pytest.approx(1.0)
    assert m["macro_f1"] == m["mode_accuracy"] == 1.0


def test_jsd_and_ce_are_finite_at_zero_probabilities():
    one_a = np.array([[1.0, 0, 0, 0, 0]])
    one_e = np.array([[0, 0, 0, 0, 1.0]])
    assert metrics.jsd_per_clip(one_a, one_e)[0] == pytest.approx(np.log(2))
    assert np.isfinite(metrics.ce_per_clip(one_a, one_e)[0])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((2, 4)), "shape"),
        (np.array([[1.0, -1, 0, 0, 1]]), ">= 0"),
        (np.zeros((1, 5)), "positive total"),
        (np.zeros((0, 5)), "at least one clip"),
    ],
)
def test_invalid_inputs_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        metrics.metrics_all(bad, bad)


def test_balanced_accuracy_and_macro_f1_on_plain_labels():
    t = np.array([0, 0, 0, 1])
    p = np.array([0, 0, 0, 0])
    assert metrics.accuracy(t, p) == pytest.approx(0.75)
    assert metrics.balanced_accuracy(t, p) == pytest.approx(0.5)
    # class 0: tp 3, fp 1 -> 6/7 ; class 1: 0
    assert metrics.macro_f1(t, p) == pytest.approx(3 / 7)


def test_per_frame_predictions_are_each_scored_against_the_clips_target():
    """MERSV's per-frame protocol: every frame is a prediction of its own. One
    clip of grade A, one frame right (EMD 0) and one sure of E (CDF differences
    1, 1, 1, 1, 0: EMD 0.8): the frames score 0.4, where their average
    [0.5, 0, 0, 0, 0.5] would score (4 * 0.25) / 5 = 0.2."""
    target = np.array([[1.0, 0, 0, 0, 0]])
    frames = np.array([[[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0]]])
    scored = metrics.metrics_all(frames, target)
    assert scored["emd"] == pytest.approx(0.4)
    assert scored["mode_accuracy"] == pytest.approx(0.5)
    assert scored["hi"] == pytest.approx(0.5)
    assert scored["n_clips"] == 1 and scored["predictions_per_clip"] == 2
    assert metrics.emd_per_clip(frames, target).tolist() == pytest.approx([0.4])
    averaged = metrics.metrics_all(frames.mean(axis=1), target)
    assert averaged["emd"] == pytest.approx(0.2)
    assert "predictions_per_clip" not in averaged
    # two clips of one and two frames' worth: each clip's EMD is its frames' mean
    two = np.array([[[1.0, 0, 0, 0, 0]] * 2, [[0, 0, 0, 0, 1.0]] * 2])
    per_clip = metrics.emd_per_clip(two, np.array([[1.0, 0, 0, 0, 0]] * 2))
    assert per_clip.tolist() == pytest.approx([0.0, 0.8])
    top = metrics.top_hi_segments(frames, target)
    assert top["A"]["n"] == 2 and top["A"]["all"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="predictions for each of 1 clips"):
        metrics.metrics_all(frames, np.ones((2, 5)))


def test_strict_nth_grade_counts_only_the_lower_index_grade_of_a_tie():
    target = np.array([[0.5, 0.5, 0, 0, 0], [0.6, 0.4, 0, 0, 0]])
    pred = np.array([[0.3, 0.7, 0, 0, 0], [0.1, 0.1, 0.1, 0.1, 0.6]])
    # 1st grade: both truths are A (clip 0's tie A/B goes to A); the predictions
    # say B and E: strictly 0 of 2 (tie-aware: 1 of 2).
    score, ties = metrics.nth_grade_balanced_accuracy(pred, target, 1, strict=True)
    assert (score, ties) == (0.0, pytest.approx(0.5))
    # 4th grade: both truths are D (order A, B, C, D, E); clip 0's prediction
    # ranks B, A, C, D, E -> D (right), clip 1's E, A, B, C, D -> C (wrong).
    score, _ = metrics.nth_grade_balanced_accuracy(pred, target, 4, strict=True)
    assert score == pytest.approx(0.5)
    m = metrics.metrics_all(pred, target)
    assert m["strict_balanced_accuracy_1st"] == 0.0
    assert m["strict_balanced_accuracy_4th"] == pytest.approx(0.5)
    assert m["balanced_accuracy_4th"] == 1.0


def test_table_5_macro_row_averages_the_classes():
    # classes A (HIs 0.8, 1.0), B (1.0), E (0.2): per class top25 0.95, 1, 0.2;
    # top50 0.9, 1, 0.2; top75 0.85, 1, 0.2 (percentiles as above)
    macro = metrics.top_hi_macro(metrics.top_hi_segments(PRED, TARGET))
    assert macro == pytest.approx(
        {"top25": 2.15 / 3, "top50": 2.1 / 3, "top75": 2.05 / 3}
    )
    m = metrics.metrics_all(PRED, TARGET)
    assert m["top25_hi_macro"] == pytest.approx(2.15 / 3)
    assert m["top75_hi_macro"] == pytest.approx(2.05 / 3)


def test_chance_floor_is_the_expectation_over_permuted_panels():
    # Two clips, all votes A and all votes E. A permutation keeps them (prob.
    # 1/2: EMD 0, mode right) or swaps them (EMD: CDF differences 1, 1, 1, 1, 0
    # squared, mean 0.8; mode wrong): expected EMD 0.4, mode accuracy 0.5.
    target = np.array([[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0]])
    chance = metrics.chance_metrics(target, n_permutations=500, seed=1)
    assert chance["emd"] == pytest.approx(0.4, abs=0.05)
    assert chance["mode_accuracy"] == pytest.approx(0.5, abs=0.06)
    assert chance["hi"] == pytest.approx(0.5, abs=0.06)
    # random predictions on the 4th grade score well above 1/5 tie-aware (the
    # issue's 0.356), the strict figure stays near the papers' level
    rng = np.random.default_rng(0)
    votes = rng.multinomial(40, [0.3, 0.4, 0.2, 0.08, 0.02], size=400)
    floor = metrics.chance_metrics(votes, n_permutations=10)
    assert floor["balanced_accuracy_4th"] > floor["strict_balanced_accuracy_4th"]
