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
