"""The figure builders: numbers in, plotly dicts out (hand-made inputs)."""

from dashboards import figures


def test_alpha_by_month_has_asymmetric_error_bars_and_skips_empty_months():
    fig = figures.alpha_by_month_figure(
        [
            {"month": "2026-10", "value": 0.6, "low": 0.5, "high": 0.65},
            {"month": "2026-11", "value": None, "low": None, "high": None},
            {"month": "2026-12", "value": 0.7, "low": 0.68, "high": 0.8},
        ]
    )
    (trace,) = fig["data"]
    assert trace["x"] == ["2026-10", "2026-12"]
    assert trace["y"] == [0.6, 0.7]
    assert [round(v, 6) for v in trace["error_y"]["array"]] == [0.05, 0.1]
    assert [round(v, 6) for v in trace["error_y"]["arrayminus"]] == [0.1, 0.02]


def test_mean_std_histogram_puts_std_on_the_rows():
    # 2 mean bins x 3 std bins: plotly's z must be 3 rows (std) of 2 (mean)
    fig = figures.mean_std_histogram_figure(
        [1, 3, 5], [0, 1, 2, 3], [[1, 2, 3], [4, 5, 6]]
    )
    (trace,) = fig["data"]
    assert trace["x"] == [2.0, 4.0] and trace["y"] == [0.5, 1.5, 2.5]
    assert trace["z"] == [[1, 4], [2, 5], [3, 6]]


def test_mode_histogram_and_confusion_name_the_grades():
    fig = figures.mode_histogram_figure([3, 0, 1, 0, 2])
    assert fig["data"][0]["x"] == ["A", "B", "C", "D", "E"]
    assert fig["data"][0]["y"] == [3, 0, 1, 0, 2]
    matrix = [[1 if i == j else 0 for j in range(5)] for i in range(5)]
    conf = figures.confusion_figure(matrix, title="x")["data"][0]
    assert conf["z"] == matrix and conf["text"][0][0] == "1"


def test_kappa_heatmap_is_symmetric_in_its_labels_and_bounded():
    fig = figures.kappa_heatmap_figure(["E1", "E2"], [[1.0, 0.4], [0.4, 1.0]])
    trace = fig["data"][0]
    assert trace["x"] == trace["y"] == ["E1", "E2"]
    assert (trace["zmin"], trace["zmax"]) == (-1, 1)


def test_convergence_draws_a_band_under_the_median():
    fig = figures.convergence_figure(
        [2, 5, 10], [0.5, 0.3, 0.2], [0.4, 0.25, 0.15], [0.6, 0.35, 0.25]
    )
    upper, lower, median = fig["data"]
    assert upper["y"] == [0.6, 0.35, 0.25] and lower["fill"] == "tonexty"
    assert median["y"] == [0.5, 0.3, 0.2]


def test_distribution_figure_turns_intervals_into_whiskers():
    fig = figures.distribution_figure(
        [0.5, 0.5, 0, 0, 0], [0.3, 0.2, 0, 0, 0], [0.7, 0.6, 0.1, 0.1, 0.1]
    )
    error = fig["data"][0]["error_y"]
    assert [round(v, 6) for v in error["array"][:3]] == [0.2, 0.1, 0.1]
    assert [round(v, 6) for v in error["arrayminus"][:2]] == [0.2, 0.3]
    assert fig["layout"]["yaxis"]["range"] == [0, 1]


def test_model_figures_from_hand_made_numbers():
    from dashboards import figures as f

    versions = f.versions_over_time_figure(
        ["v1", "v2"], [0.05, 0.04], [0.01, 0.005], [0.07, 0.07]
    )
    assert versions["data"][0]["y"] == [0.05, 0.04]
    assert versions["data"][0]["error_y"]["array"] == [0.01, 0.005]
    hi = f.hi_by_class_figure({"A": [0.9, 0.8], "C": [0.5]})
    assert [d["name"] for d in hi["data"]] == ["A", "C"] and hi["data"][1]["y"] == [0.5]
    confusion = f.mode_confusion_figure([[1, 0, 0, 0, 0]] + [[0] * 5] * 4)
    assert confusion["data"][0]["z"][0][0] == 1
    assert "model" in confusion["layout"]["xaxis"]["title"]["text"]
    scatter = f.mean_grade_figure([1.5, 3.0], [1.0, 3.5])
    assert scatter["data"][0]["x"] == [1.0, 3.5] and scatter["data"][0]["y"] == [
        1.5,
        3.0,
    ]
    cal = f.calibration_figure([[{"predicted": 0.1, "observed": 0.2, "n": 3}]] * 5)
    assert len(cal["data"]) == 6 and cal["data"][0]["text"] == ["3 clips"]
    among = f.model_among_experts_figure([0.1, 0.2, 0.3], 0.15, 0.12, 0.18)
    assert among["data"][0]["x"] == [0.1, 0.2, 0.3]
    assert among["data"][1]["x"] == [0.15, 0.15]
    assert among["layout"]["shapes"][0]["x0"] == 0.12


def test_every_axis_grows_its_margin_so_no_label_is_clipped():
    built = [
        figures.alpha_by_month_figure([]),
        figures.mean_std_histogram_figure([1, 5], [0, 2], [[1]]),
        figures.mode_histogram_figure([1, 2, 3, 4, 5]),
        figures.kappa_heatmap_figure(["EXP-0001"], [[1.0]]),
        figures.convergence_figure([1], [0.5], [0.4], [0.6]),
        figures.confusion_figure([[0] * 5] * 5, title="x"),
        figures.bias_over_time_figure(["2026-01"], [0.1]),
        figures.mode_confusion_figure([[0] * 5] * 5),
    ]
    for fig in built:
        axes = [k for k in fig["layout"] if k.startswith(("xaxis", "yaxis"))]
        assert axes, fig["layout"]
        for key in axes:
            assert fig["layout"][key]["automargin"] is True, (key, fig["layout"])
    # kept, beside the margin
    assert built[0]["layout"]["yaxis"]["range"] == [-0.1, 1.0]


def test_dawid_skene_confusion_is_a_probability_heatmap_with_two_decimals():
    matrix = [[0.9, 0.1, 0.0, 0.0, 0.0]] + [[0.0, 1.0, 0.0, 0.0, 0.0]] * 4
    fig = figures.ds_confusion_figure(matrix, title="EXP-0001")
    (trace,) = fig["data"]
    assert trace["type"] == "heatmap" and trace["z"] == matrix
    assert trace["x"] == trace["y"] == ["A", "B", "C", "D", "E"]
    assert (trace["zmin"], trace["zmax"]) == (0.0, 1.0)
    assert trace["text"][0][:2] == ["0.90", "0.10"]
    assert "true" in fig["layout"]["yaxis"]["title"]["text"]
    assert fig["layout"]["yaxis"]["automargin"] is True
