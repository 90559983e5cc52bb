"""Admin dashboards: panel disagreement, one expert, and the clip explorer.

Thin: the figures come from ``annotation`` selectors (cached panel statistics) and
``dashboards.figures`` (pure builders). Experts get 403, anonymous visitors the
login page: nothing here is ever shown to an expert.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation import dispersion, roles, selectors, services
from annotation.models import Clip
from dashboards import figures
from modeling.metrics import emd_per_clip
from registry import selectors as registry_selectors

admin_required = roles.admin_page_required(
    "The dashboards are for administrators. Experts grade clips on the grading page."
)


def _statistics():
    """The cached statistics; stale ones are recomputed here when the panel is
    small, otherwise the worker is asked and the last figures are shown."""
    statistics = selectors.panel_statistics_latest()
    stale = selectors.panel_statistics_stale(statistics=statistics)
    refreshing = False
    if stale:
        small = statistics is None or statistics.n_votes <= (
            settings.PANEL_STATISTICS_INLINE_VOTES
        )
        if small:
            statistics = services.panel_statistics_refresh()
        else:
            services.panel_statistics_refresh_queue()  # one at a time
            refreshing = True
    return statistics, refreshing


@require_GET
@admin_required
def panel_dashboard(request: HttpRequest) -> HttpResponse:
    statistics, refreshing = _statistics()
    data = statistics.data
    charts = {
        "alpha-by-month": figures.alpha_by_month_figure(data["alpha_by_month"]),
        "mean-std": figures.mean_std_histogram_figure(
            data["mean_std"]["mean_edges"],
            data["mean_std"]["std_edges"],
            data["mean_std"]["counts"],
        ),
        "modes": figures.mode_histogram_figure(data["mode_counts"]),
        "kappa": figures.kappa_heatmap_figure(
            data["kappa"]["labels"], data["kappa"]["matrix"]
        ),
        "convergence": figures.convergence_figure(
            data["convergence"]["k"],
            data["convergence"]["median"],
            data["convergence"]["q25"],
            data["convergence"]["q75"],
        ),
    }
    dawid_skene = data.get("dawid_skene", {})
    experts = [
        {**e, "ds_accuracy": dawid_skene.get(str(e["expert_id"]), {}).get("accuracy")}
        for e in data["experts"]
    ]
    return render(
        request,
        "dashboards/panel.html",
        {
            "statistics": statistics,
            "data": data,
            "experts": experts,
            "charts": charts,
            "refreshing": refreshing,
            "synthetic": selectors.panel_is_synthetic(),
        },
    )


@require_GET
@admin_required
def expert_dashboard(request: HttpRequest, expert_id: int) -> HttpResponse:
    detail = selectors.expert_detail(expert_id=expert_id)
    if detail is None:
        raise Http404("This expert has no votes yet.")
    code = selectors.expert_codes().get(expert_id, f"#{expert_id}")
    statistics, _ = _statistics()
    dawid_skene = statistics.data.get("dawid_skene", {}).get(str(expert_id))
    charts = {
        "confusion": figures.confusion_figure(
            detail["confusion"], title=f"{code} against the rest of the panel"
        ),
        "bias": figures.bias_over_time_figure(
            detail["months"], detail["bias_by_month"]
        ),
    }
    if dawid_skene is not None:
        charts["ds-confusion"] = figures.ds_confusion_figure(
            dawid_skene["confusion"], title=f"{code}: Dawid–Skene estimated confusion"
        )
    return render(
        request,
        "dashboards/expert.html",
        {
            "detail": detail,
            "code": code,
            "charts": charts,
            "dawid_skene": dawid_skene,
            "statistics": statistics,
        },
    )


SORT_LABELS = {
    "disagreement": "disagreement (ordinal dispersion)",
    "entropy": "entropy",
    "ci_width": "widest credible interval",
    "votes": "number of votes",
    "id": "clip id",
}


@require_GET
@admin_required
def clip_explorer(request: HttpRequest) -> HttpResponse:
    sort = request.GET.get("sort", "disagreement")
    if sort not in selectors.CLIP_SORTS:
        sort = "disagreement"
    descending = request.GET.get("order", "desc") != "asc"
    try:
        min_votes = max(0, min(10_000, int(request.GET.get("min_votes", "0"))))
    except ValueError:
        min_votes = 0
    table = selectors.clips_explorer(
        sort=sort, descending=descending, min_votes=min_votes
    )
    per_page = 24
    page = Paginator(range(len(table)), per_page).get_page(request.GET.get("page"))
    start = (page.number - 1) * per_page
    page.object_list = table.rows(start, start + per_page)
    for row in page.object_list:
        row["chart"] = figures.distribution_figure(
            row["probs"], row["ci_low"], row["ci_high"]
        )
    return render(
        request,
        "dashboards/clips.html",
        {
            "page": page,
            "sort": sort,
            "descending": descending,
            "min_votes": min_votes,
            "sort_labels": SORT_LABELS,
            "charts": {f"clip-{row['id']}": row["chart"] for row in page.object_list},
        },
    )


# --- a model version against the panel -------------------------------------------

METRIC_LABELS = {
    "emd": "EMD",
    "mse": "MSE",
    "jsd": "JSD",
    "ce": "cross-entropy",
    "hi": "HI",
    "macro_hi": "Macro HI",
    "macro_f1": "Macro F1",
    "mode_accuracy": "grade-mode accuracy",
    "within_one_accuracy": "within-one accuracy",
    "balanced_accuracy_1st": "balanced accuracy, 1st grade (ties count)",
    "strict_balanced_accuracy_1st": "balanced accuracy, 1st grade (strict)",
    "tie_rate_1st": "share of clips whose 1st grade is a tie",
    "balanced_accuracy_2nd": "balanced accuracy, 2nd grade (ties count)",
    "strict_balanced_accuracy_2nd": "balanced accuracy, 2nd grade (strict)",
    "tie_rate_2nd": "share of clips whose 2nd grade is a tie",
    "balanced_accuracy_3rd": "balanced accuracy, 3rd grade (ties count)",
    "strict_balanced_accuracy_3rd": "balanced accuracy, 3rd grade (strict)",
    "tie_rate_3rd": "share of clips whose 3rd grade is a tie",
    "balanced_accuracy_4th": "balanced accuracy, 4th grade (ties count)",
    "strict_balanced_accuracy_4th": "balanced accuracy, 4th grade (strict)",
    "tie_rate_4th": "share of clips whose 4th grade is a tie",
    "balanced_accuracy_5th": "balanced accuracy, 5th grade (ties count)",
    "strict_balanced_accuracy_5th": "balanced accuracy, 5th grade (strict)",
    "tie_rate_5th": "share of clips whose 5th grade is a tie",
    "top25_hi_macro": "top-25 % HI, Macro (Table 5)",
    "top50_hi_macro": "top-50 % HI, Macro (Table 5)",
    "top75_hi_macro": "top-75 % HI, Macro (Table 5)",
}
REVIEW_FILTERS = {
    "disagree": "model and panel disagree most (largest EMD)",
    "split": "the panel is split (highest entropy)",
    "model_unsure": "the model is unsure, the panel is not",
    "panel_unsure": "the panel is unsure, the model is not",
}


# The model dashboard charts and tabulates the newest versions, not all of them:
# a page's cost must not grow with the registry.
VERSION_HISTORY = 30


def _version_or_active(version_id: int | None):
    if version_id is None:
        return registry_selectors.version_active()
    version = registry_selectors.version_get(version_id=version_id)
    if version is None:
        raise Http404(f"There is no model version {version_id}.")
    return version


@require_GET
@admin_required
def model_dashboard(request: HttpRequest, version_id: int | None = None):
    version = _version_or_active(version_id)
    if version is None:
        return render(request, "dashboards/model.html", {"version": None})
    report = registry_selectors.version_panel_report(version=version)
    versions = list(registry_selectors.version_list()[:VERSION_HISTORY])
    history = list(reversed(versions))
    expert = report["as_expert"]
    charts = {
        "versions": figures.versions_over_time_figure(
            [f"v{v.number}" for v in history],
            [v.emd_mean for v in history],
            [v.emd_std for v in history],
            [v.baseline_emd for v in history],
        ),
        "among-experts": figures.model_among_experts_figure(
            expert["expert_emd"], expert["emd"], expert["emd_low"], expert["emd_high"]
        ),
        "hi": figures.hi_by_class_figure(
            report["hi"].get("values"), boxes=report["hi"].get("boxes")
        ),
        "confusion": figures.mode_confusion_figure(report["confusion"]),
        "mean-grade": figures.mean_grade_figure(
            report["predicted_mean"],
            report["panel_mean"],
            sampled_from=report.get("mean_grade_sampled_from"),
        ),
        "calibration": figures.calibration_figure(report["calibration"]),
    }
    chance = report.get("chance", {})
    metrics = [
        {"label": label, **report["metrics"][key], "chance": chance.get(key)}
        for key, label in METRIC_LABELS.items()
        if key in report["metrics"]
    ]
    return render(
        request,
        "dashboards/model.html",
        {
            "version": version,
            "versions": versions,
            "version_history": VERSION_HISTORY,
            "report": report,
            "metrics": metrics,
            "charts": charts,
            "filters": REVIEW_FILTERS,
        },
    )


@require_GET
@admin_required
def model_clips(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_active(version_id)
    which = request.GET.get("filter", "disagree")
    if which not in REVIEW_FILTERS:
        which = "disagree"
    rows = registry_selectors.version_clip_rows(version=version, which=which)
    return render(
        request,
        "dashboards/model_clips.html",
        {"version": version, "rows": rows, "which": which, "filters": REVIEW_FILTERS},
    )


# The clip review lists the newest versions' predictions of the clip.
CLIP_PREDICTIONS = 50


@require_GET
@admin_required
def clip_review(request: HttpRequest, clip_id: int) -> HttpResponse:
    clip = Clip.objects.filter(pk=clip_id).select_related("patient").first()
    if clip is None:
        raise Http404(f"There is no clip {clip_id}.")
    panel = selectors.distribution_for_clip(clip_id=clip_id)
    spread = dispersion.clip_dispersion([panel["counts"]])
    low, high = spread.ci_low[0].tolist(), spread.ci_high[0].tolist()
    predictions = registry_selectors.clip_predictions(
        clip_id=clip_id, limit=CLIP_PREDICTIONS
    )
    active = next((p for p in predictions if p.version.is_active), None)
    if active is None and len(predictions) == CLIP_PREDICTIONS:
        active = registry_selectors.clip_prediction_active(clip_id=clip_id)
    charts = {
        "panel": figures.distribution_figure(panel["probs"], low, high, title="panel")
    }
    rows = []
    for prediction in predictions:
        emd = None
        if panel["n_votes"]:
            emd = float(
                emd_per_clip(np.array([prediction.probs]), np.array([panel["probs"]]))[
                    0
                ]
            )
        rows.append({"prediction": prediction, "emd": emd})
    if active is not None:
        charts["model"] = figures.distribution_figure(
            active.probs,
            active.probs,
            active.probs,
            title=f"model v{active.version.number}",
        )
    return render(
        request,
        "dashboards/clip_review.html",
        {
            "clip": clip,
            "panel": panel,
            "dispersion": {
                "ordinal": float(spread.ordinal_dispersion[0]),
                "entropy_bits": float(spread.entropy_bits[0]),
            },
            "rows": rows,
            "clip_predictions": CLIP_PREDICTIONS,
            "active": active,
            "charts": charts,
        },
    )
