"""Two predictors scored on the same clips: hand-computed EMDs of one-hot
distributions (a grade off by one: CDFs differ in one of five bins, EMD 1/5)."""

import subprocess
import sys

import numpy as np
import pytest

from modeling.paired import paired_emd

A, B, C = np.eye(5)[:3]


def test_a_candidate_right_on_every_clip_is_better_by_the_whole_gap():
    target = np.tile(A, (20, 1)) * 4  # vote counts: four experts, all A
    result = paired_emd(
        np.tile(A, (20, 1)),
        np.tile(B, (20, 1)),
        target,
        patients=np.repeat(np.arange(10), 2),
        n_boot=500,
    )
    assert result["candidate_emd"] == 0.0
    assert result["reference_emd"] == pytest.approx(0.2)
    assert (result["delta"], result["low"], result["high"]) == pytest.approx(
        (-0.2, -0.2, -0.2)
    )
    assert (result["n_clips"], result["n_patients"]) == (20, 10)
    assert result["verdict"] == "better"


def test_one_patient_better_and_one_worse_is_level_with_the_interval_by_hand():
    # Patient a: candidate exact, reference one grade off (-0.2); patient b: the
    # candidate two grades off, reference exact (+0.4). Resamples {a, a}, {b, b}
    # and {a, b} give -0.2, +0.4 and +0.1 with chances 1/4, 1/4, 1/2, so the
    # 2.5th and 97.5th percentiles are the two extremes.
    result = paired_emd(
        np.array([A, C]),
        np.array([B, A]),
        np.array([A, A]),
        patients=["a", "b"],
        n_boot=2000,
    )
    assert result["delta"] == pytest.approx(0.1)
    assert (result["low"], result["high"]) == pytest.approx((-0.2, 0.4))
    assert result["verdict"] == "level"


def test_shapes_that_do_not_match_are_refused():
    with pytest.raises(ValueError, match="must match"):
        paired_emd(np.array([A]), np.array([A, B]), np.array([A]), patients=["a"])


def test_the_paired_helpers_import_without_torch():
    # The web process decides promotions with them and never loads torch.
    code = "import sys, modeling.paired; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
