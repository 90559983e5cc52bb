"""Admin dashboards: panel disagreement, one expert, and the clip explorer.

Thin: the figures come from ``annotation`` selectors (cached panel statistics) and
``dashboards.figures`` (pure builders). Experts get 403, anonymous visitors the
login page: nothing here is ever shown to an expert.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation import roles, selectors, services
from dashboards import figures


def admin_required(view):
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not roles.user_is_admin(user=request.user):
            raise PermissionDenied(
                "The dashboards are for administrators. Experts grade clips on the "
                "grading page."
            )
        return view(request, *args, **kwargs)

    return wrapped


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
            services.task_send(
                name=services.enqueue.PANEL_STATISTICS_REFRESH, kwargs={}
            )
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
    return render(
        request,
        "dashboards/panel.html",
        {
            "statistics": statistics,
            "data": data,
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
    charts = {
        "confusion": figures.confusion_figure(
            detail["confusion"], title=f"{code} against the rest of the panel"
        ),
        "bias": figures.bias_over_time_figure(
            detail["months"], detail["bias_by_month"]
        ),
    }
    return render(
        request,
        "dashboards/expert.html",
        {"detail": detail, "code": code, "charts": charts},
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
