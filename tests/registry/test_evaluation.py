"""The model-vs-panel figures on hand-made inputs with known answers."""

import numpy as np
import pytest

from modeling.metrics import emd_per_clip
from registry import evaluation

A = [1.0, 0, 0, 0, 0]
C = [0, 0, 1.0, 0, 0]


def test_bootstrap_over_patients_resamples_whole_patients():
    # Patient p1's two clips are predicted perfectly, p2's are a full grade-mode
    # miss with EMD e. With two patients drawn with replacement the replicate's
    # EMD is 0 (p1 twice, prob 1/4), e/2 (one each, 1/2) or e (p2 twice, 1/4):
    # the 95 % interval runs from 0 to e.
    pred = np.array([A, A, A, A])
    target = np.array([A, A, C, C])
    e = float(emd_per_clip(np.array([A]), np.array([C]))[0])
    table = evaluation.bootstrap_over_patients(
        pred, target, ["p1", "p1", "p2", "p2"], n_boot=2000, seed=1
    )
    assert table["emd"]["value"] == pytest.approx(e / 2)
    assert table["emd"]["low"] == pytest.approx(0.0)
    assert table["emd"]["high"] == pytest.approx(e)
    assert table["mode_accuracy"]["value"] == 0.5


def test_a_perfect_model_has_a_zero_width_interval():
    pred = np.array([A, C, C])
    table = evaluation.bootstrap_over_patients(pred, pred, ["a", "b", "c"], n_boot=50)
    assert table["emd"] == {"value": 0.0, "low": 0.0, "high": 0.0}


def test_confusion_calibration_and_mean_grades_by_hand():
    pred = np.array([A, C, C])
    target = np.array([A, A, C])
    matrix = evaluation.mode_confusion(pred, target)
    assert matrix[0][0] == 1 and matrix[0][2] == 1 and matrix[2][2] == 1
    assert sum(map(sum, matrix)) == 3
    predicted, panel = evaluation.mean_grades(pred, target)
    assert predicted == [1.0, 3.0, 3.0] and panel == [1.0, 1.0, 3.0]
    cal = evaluation.calibration(pred, target, n_bins=2)
    # Grade A: predicted share 0 for clips 2 and 3 (panel shares 1, 0), 1 for clip 1.
    assert cal[0] == [
        {"predicted": 0.0, "observed": 0.5, "n": 2},
        {"predicted": 1.0, "observed": 1.0, "n": 1},
    ]


def test_the_model_is_placed_among_the_experts_on_their_scale():
    # The panel is split A/C on every clip; the model votes A: EMD of a one-hot A
    # to (0.5, 0, 0.5, 0, 0) is mean((1-.5)^2, (1-.5)^2, 0, 0, 0) = 0.1.
    target = np.array([[0.5, 0, 0.5, 0, 0]] * 4)
    pred = np.array([[0.6, 0, 0.4, 0, 0]] * 4)
    result = evaluation.model_as_expert(
        pred,
        target,
        ["a", "a", "b", "b"],
        expert_emd=[0.05, 0.12, 0.2, None],
        expert_within_one=[1.0, 0.5],
        expert_bias=[0.1, -0.2],
    )
    assert result["emd"] == pytest.approx(0.1)
    assert result["closer_than"] == 2 and result["n_experts"] == 3
    assert result["within_one"] == 1.0  # the tied panel mode goes to A
    assert result["bias"] == pytest.approx(1 - 2.0)
    # within one: 1.0 beats the expert at 0.5 only; |bias| 1.0 is larger than both
    assert result["within_one_above"] == 1 and result["bias_smaller_than"] == 0
    assert evaluation.sentence(result) == (
        "Voting its most likely grade, the model is closer to the panel than 2 of 3 "
        "experts."
    )
