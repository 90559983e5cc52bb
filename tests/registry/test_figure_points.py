"""Charts of many clips stay the same size: a sample for the mean-grade scatter,
box figures for the HI by class (issue 26: no page grows with the clips)."""

import numpy as np
import pytest
from matplotlib.cbook import boxplot_stats

from dashboards import figures
from registry import evaluation


def test_box_statistics_equal_matplotlibs_tukey_boxes():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.beta(5, 2, size=999), [0.01, 0.02]])  # outliers
    ours = evaluation.box_statistics(values)
    reference = boxplot_stats(values, whis=1.5)[0]
    assert ours["q1"] == pytest.approx(reference["q1"])
    assert ours["median"] == pytest.approx(reference["med"])
    assert ours["q3"] == pytest.approx(reference["q3"])
    assert ours["lowerfence"] == pytest.approx(reference["whislo"])
    assert ours["upperfence"] == pytest.approx(reference["whishi"])
    assert ours["n"] == 1001 and ours["lowerfence"] > 0.02


def test_a_sample_is_every_row_when_few_and_a_fixed_subset_when_many():
    assert evaluation.sample_indices(5, limit=10).tolist() == [0, 1, 2, 3, 4]
    many = evaluation.sample_indices(10_000, limit=100)
    assert len(many) == 100 == len(set(many.tolist()))
    assert (np.diff(many) > 0).all() and many.max() < 10_000
    assert (evaluation.sample_indices(10_000, limit=100) == many).all()


def test_hi_by_class_gives_boxes_instead_of_points_past_the_limit():
    rng = np.random.default_rng(0)
    target = rng.dirichlet(np.ones(5), size=300)
    pred = rng.dirichlet(np.ones(5), size=300)
    few = evaluation.hi_by_class(pred, target, max_points=1000)
    many = evaluation.hi_by_class(pred, target, max_points=100)
    assert "boxes" not in few and "values" not in many
    assert few["segments"] == many["segments"]
    for grade, values in few["values"].items():
        box = many["boxes"][grade]
        assert box["n"] == len(values)
        assert box["median"] == pytest.approx(np.median(values), abs=1e-4)
    figure = figures.hi_by_class_figure(boxes=many["boxes"])
    trace = figure["data"][0]
    assert "y" not in trace and trace["median"] == [
        many["boxes"][trace["name"]]["median"]
    ]


def test_the_mean_grade_chart_says_when_it_shows_a_sample():
    sampled = figures.mean_grade_figure([1.0, 2.0], [1.5, 2.5], sampled_from=90_000)
    assert "a random 2 of 90,000 clips" in sampled["layout"]["title"]["text"]
    whole = figures.mean_grade_figure([1.0, 2.0], [1.5, 2.5])
    assert "random" not in whole["layout"]["title"]["text"]
