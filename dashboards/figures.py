"""Plotly figures as plain dicts: numbers in, ``{"data": [...], "layout": {...}}``
out. Pure (no Django); the pages hand them to plotly.js, served from our static
files. Every builder is unit-tested on hand-made inputs."""

from __future__ import annotations

GRADES = ("A", "B", "C", "D", "E")
_FONT = {"family": "system-ui, sans-serif", "size": 13}


def _layout(title: str, **extra) -> dict:
    """A figure's layout; its axes grow the margins to fit their labels (plotly
    otherwise clips long tick labels and axis titles at the chart's edge). The
    page shows ``title`` as a heading above the chart, where it can wrap."""
    axes = {
        key: {"automargin": True, **value}
        for key, value in extra.items()
        if key.startswith(("xaxis", "yaxis"))
    }
    return {
        "title": {"text": title},
        "font": _FONT,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        **extra,
        **axes,
    }


def alpha_by_month_figure(rows: list[dict]) -> dict:
    """Krippendorff's α (ordinal) per month with its bootstrap interval.
    ``rows``: {"month", "value", "low", "high"}; months without a value are left
    out."""
    rows = [r for r in rows if r.get("value") is not None]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+lines",
                "name": "α (ordinal)",
                "x": [r["month"] for r in rows],
                "y": [r["value"] for r in rows],
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [(r["high"] or r["value"]) - r["value"] for r in rows],
                    "arrayminus": [r["value"] - (r["low"] or r["value"]) for r in rows],
                },
            }
        ],
        "layout": _layout(
            "Panel agreement per month (95 % bootstrap interval)",
            xaxis={"title": {"text": "month"}, "type": "category"},
            yaxis={"title": {"text": "Krippendorff's α"}, "range": [-0.1, 1.0]},
        ),
    }


def mean_std_histogram_figure(mean_edges, std_edges, counts) -> dict:
    """Joint histogram of the clips' mean grade score and its standard deviation
    (Fig. 3 of Nakagawa et al.); ``counts`` is len(mean_edges)-1 × len(std_edges)-1."""
    mean_centres = [(a + b) / 2 for a, b in zip(mean_edges[:-1], mean_edges[1:])]
    std_centres = [(a + b) / 2 for a, b in zip(std_edges[:-1], std_edges[1:])]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": mean_centres,
                "y": std_centres,
                # plotly's z rows are y: transpose the (mean, std) table
                "z": [list(column) for column in zip(*counts)],
                "colorscale": "Blues",
                "colorbar": {"title": {"text": "clips"}},
            }
        ],
        "layout": _layout(
            "Mean vs standard deviation of the grade scores (A = 1 … E = 5)",
            xaxis={"title": {"text": "mean score"}},
            yaxis={"title": {"text": "standard deviation"}},
        ),
    }


def mode_histogram_figure(mode_counts) -> dict:
    """How many clips have each grade as their most-voted grade."""
    return {
        "data": [
            {"type": "bar", "x": list(GRADES), "y": [int(c) for c in mode_counts]}
        ],
        "layout": _layout(
            "Grade mode of the clips",
            xaxis={"title": {"text": "grade mode"}},
            yaxis={"title": {"text": "clips"}},
        ),
    }


def kappa_heatmap_figure(labels, matrix) -> dict:
    """Pairwise quadratic-weighted κ between experts (blank: too little overlap)."""
    return {
        "data": [
            {
                "type": "heatmap",
                "x": list(labels),
                "y": list(labels),
                "z": [list(row) for row in matrix],
                "zmin": -1,
                "zmax": 1,
                "colorscale": "RdBu",
                "colorbar": {"title": {"text": "κ"}},
            }
        ],
        "layout": _layout(
            "Pairwise weighted κ (quadratic) between experts",
            xaxis={"type": "category"},
            yaxis={"type": "category", "autorange": "reversed"},
        ),
    }


def convergence_figure(k, median, q25, q75) -> dict:
    """Widest 95 % credible interval of a clip's grade shares against its votes."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(k),
                "y": list(q75),
                "line": {"width": 0},
                "showlegend": False,
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(k),
                "y": list(q25),
                "fill": "tonexty",
                "line": {"width": 0},
                "name": "interquartile range",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": list(k),
                "y": list(median),
                "name": "median over clips",
            },
        ],
        "layout": _layout(
            "How fast a clip's distribution converges (its own votes subsampled)",
            xaxis={"title": {"text": "votes per clip"}},
            yaxis={"title": {"text": "widest 95 % interval<br>of a grade share"}},
        ),
    }


def confusion_figure(matrix, *, title: str) -> dict:
    """5 × 5 counts: rows the rest of the panel's grade mode, columns the vote."""
    return {
        "data": [
            {
                "type": "heatmap",
                "x": list(GRADES),
                "y": list(GRADES),
                "z": [list(row) for row in matrix],
                "colorscale": "Blues",
                "text": [[str(v) for v in row] for row in matrix],
                "texttemplate": "%{text}",
            }
        ],
        "layout": _layout(
            title,
            xaxis={"title": {"text": "this expert's grade"}},
            yaxis={"title": {"text": "panel's mode"}, "autorange": "reversed"},
        ),
    }


def ds_confusion_figure(matrix, *, title: str) -> dict:
    """5 × 5 Dawid–Skene confusion: rows the estimated true grade, columns the
    expert's grade, each cell the probability of that grade given the true one."""
    return {
        "data": [
            {
                "type": "heatmap",
                "x": list(GRADES),
                "y": list(GRADES),
                "z": [list(row) for row in matrix],
                "zmin": 0.0,
                "zmax": 1.0,
                "colorscale": "Blues",
                "text": [[f"{v:.2f}" for v in row] for row in matrix],
                "texttemplate": "%{text}",
            }
        ],
        "layout": _layout(
            title,
            xaxis={"title": {"text": "this expert's grade"}},
            yaxis={"title": {"text": "estimated true grade"}, "autorange": "reversed"},
        ),
    }


def bias_over_time_figure(months, bias) -> dict:
    """Signed bias per month (+ = harsher than the rest of the panel)."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+lines",
                "x": list(months),
                "y": list(bias),
                "connectgaps": False,
            }
        ],
        "layout": _layout(
            "Bias against the rest of the panel (grade steps, + = harsher)",
            xaxis={"title": {"text": "month"}, "type": "category"},
            yaxis={"title": {"text": "mean own score − panel mean"}, "zeroline": True},
        ),
    }


def distribution_figure(probs, low, high, *, title: str = "") -> dict:
    """A clip's grade distribution with the credible interval of each share."""
    return {
        "data": [
            {
                "type": "bar",
                "x": list(GRADES),
                "y": list(probs),
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [h - p for p, h in zip(probs, high)],
                    "arrayminus": [p - lo for p, lo in zip(probs, low)],
                },
            }
        ],
        "layout": _layout(
            title,
            margin={"l": 36, "r": 8, "t": 28 if title else 8, "b": 28},
            yaxis={"range": [0, 1], "title": {"text": "share"}},
            height=180,
        ),
    }


# --- a model version against the panel ----------------------------------------


def versions_over_time_figure(labels, emd_mean, emd_std, baseline) -> dict:
    """Cross-validated EMD (mean ± std over folds) of each version, oldest first,
    with the mean-distribution baseline of its snapshot."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+lines",
                "name": "model (mean ± std over folds)",
                "x": list(labels),
                "y": list(emd_mean),
                "error_y": {"type": "data", "array": list(emd_std)},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "predicting the mean distribution",
                "x": list(labels),
                "y": list(baseline),
                "line": {"dash": "dot"},
            },
        ],
        "layout": _layout(
            "Cross-validated EMD by version (lower is better)",
            xaxis={"title": {"text": "version"}, "type": "category"},
            yaxis={"title": {"text": "EMD"}, "rangemode": "tozero"},
        ),
    }


def hi_by_class_figure(
    values: dict | None = None, *, boxes: dict | None = None
) -> dict:
    """Fig. 6 of Nakagawa et al.: the histogram intersection of each clip, grouped
    by the panel's grade mode (box per class): from the ``values`` themselves
    (every point drawn), or, for many clips, from precomputed ``boxes``
    (quartiles and fences, ``registry.evaluation.box_statistics``)."""
    if boxes is not None:
        data = [
            {
                "type": "box",
                "name": grade,
                "x": [grade],
                **{k: [box[k]] for k in ("q1", "median", "q3")},
                "lowerfence": [box["lowerfence"]],
                "upperfence": [box["upperfence"]],
                "hovertext": f"{box['n']} clips",
            }
            for grade, box in boxes.items()
        ]
    else:
        data = [
            {"type": "box", "name": grade, "y": list(hi), "boxpoints": "all"}
            for grade, hi in (values or {}).items()
        ]
    return {
        "data": data,
        "layout": _layout(
            "Histogram intersection by the panel's grade mode",
            showlegend=False,
            yaxis={"title": {"text": "HI (1 = identical)"}, "range": [0, 1]},
        ),
    }


def mode_confusion_figure(matrix) -> dict:
    """5 × 5 counts: rows the panel's grade mode, columns the model's."""
    figure = confusion_figure(matrix, title="Grade modes: panel (rows) vs model")
    figure["layout"]["xaxis"]["title"]["text"] = "model's grade mode"
    return figure


def mean_grade_figure(predicted, panel, *, sampled_from: int | None = None) -> dict:
    """Predicted vs panel mean grade per clip (1 = A … 5 = E), with the diagonal;
    ``sampled_from``: the clips are a random sample of that many (the title
    says so)."""
    title = "Mean grade: model vs panel (1 = A, 5 = E)"
    if sampled_from is not None:
        title += f"; a random {len(predicted):,} of {sampled_from:,} clips"
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": list(panel),
                "y": list(predicted),
                "name": "clips",
                "marker": {"opacity": 0.6},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": [1, 5],
                "y": [1, 5],
                "name": "equal",
                "line": {"dash": "dot"},
            },
        ],
        "layout": _layout(
            title,
            showlegend=False,
            xaxis={"title": {"text": "panel mean grade"}, "range": [1, 5]},
            yaxis={"title": {"text": "predicted mean grade"}, "range": [1, 5]},
        ),
    }


def calibration_figure(rows) -> dict:
    """Per grade: mean panel share against mean predicted share, per bin."""
    data = [
        {
            "type": "scatter",
            "mode": "markers+lines",
            "name": grade,
            "x": [b["predicted"] for b in bins],
            "y": [b["observed"] for b in bins],
            "text": [f"{b['n']} clips" for b in bins],
        }
        for grade, bins in zip(GRADES, rows)
    ]
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "x": [0, 1],
            "y": [0, 1],
            "name": "calibrated",
            "line": {"dash": "dot", "color": "#888"},
        }
    )
    return {
        "data": data,
        "layout": _layout(
            "Calibration per grade",
            xaxis={"title": {"text": "predicted share"}, "range": [0, 1]},
            yaxis={"title": {"text": "panel share"}, "range": [0, 1]},
        ),
    }


def model_among_experts_figure(expert_emd, model_emd, low, high) -> dict:
    """The experts' leave-one-out EMD as a histogram, the model's as a line with
    its bootstrap interval."""
    top = max(1, len(expert_emd))
    return {
        "data": [
            {
                "type": "histogram",
                "x": list(expert_emd),
                "name": "experts",
                "nbinsx": 20,
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": [model_emd, model_emd],
                "y": [0, top / 3],
                "name": "model",
                "line": {"color": "#c0392b", "width": 3},
            },
        ],
        "layout": _layout(
            "EMD to the panel: every expert (leave-one-out) and the model",
            xaxis={"title": {"text": "mean EMD of a vote to the panel"}},
            yaxis={"title": {"text": "experts"}},
            shapes=[
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": low,
                    "x1": high,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": "rgba(192,57,43,0.15)",
                    "line": {"width": 0},
                }
            ],
        ),
    }
