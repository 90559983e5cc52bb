"""The model loop's pages (under /registry/), administrators only: start, watch,
cancel and retry training runs; compare, promote and roll back versions; read
predictions. Experts get 403 and anonymous visitors the login page: no page here
is ever shown to an expert. Thin: services do the work, the run page polls the
registry API for live progress."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotation import roles
from annotation.errors import DomainError
from jobs.selectors import silent_queues
from registry import comparison, selectors, services
from registry.profiles import OVERRIDE_KEYS, PROFILES
from registry.serializers import RunStartInputSerializer

# Keys of a version's cross-validated metrics (modeling.metrics.metrics_all).
METRIC_KEYS = ("emd", "mse", "jsd", "ce", "hi", "macro_f1", "mode_accuracy")
# Pages show the newest versions, however many there are; older ones are a
# version number away (the compare page's ?v=, the version page).
HOME_VERSIONS = 50
COMPARE_CHOICES = 50
# Each paired comparison reads a snapshot's predictions once (then cached).
COMPARE_MAX = 6


admin_required = roles.admin_page_required(
    "The model registry is for administrators. Experts grade clips on the grading page."
)


def _paired_row(version, evidence: dict) -> dict:
    better, verdict = comparison.comparison_verdict(evidence)
    return {
        "version": version,
        "evidence": evidence,
        "better": better,
        "verdict": evidence.get("problem", verdict),
    }


def _metric_rows(metrics: dict) -> list[dict]:
    mean, std = metrics.get("mean", {}), metrics.get("std", {})
    return [
        {"name": k, "mean": mean[k], "std": std.get(k)}
        for k in METRIC_KEYS
        if k in mean
    ]


@require_GET
@admin_required
def registry_home(request: HttpRequest) -> HttpResponse:
    versions = list(selectors.version_list(with_metrics=False)[:HOME_VERSIONS])
    active = selectors.version_active()
    return render(
        request,
        "registry/home.html",
        {
            "runs": selectors.run_list()[:25],
            "versions": versions,
            "active": active,
            "rollback_target": (
                selectors.version_rollback_target(active=active) if active else None
            ),
            "events": selectors.version_events(limit=15),
            "profiles": PROFILES.values(),
            "override_keys": OVERRIDE_KEYS,
            "latest_snapshot": selectors.snapshot_latest(),
            "silent_queues": silent_queues(
                also=tuple(selectors.runs_active().values_list("queue", flat=True))
            ),
        },
    )


@require_POST
@admin_required
def run_start(request: HttpRequest) -> HttpResponse:
    data = {k: v for k, v in request.POST.items() if v not in ("", None)}
    data.pop("csrfmiddlewaretoken", None)
    form = RunStartInputSerializer(data=data)
    if not form.is_valid():
        errors = "; ".join(
            f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items()
        )
        messages.error(request, f"The run was not started: {errors}")
        return redirect("registry_home")
    try:
        run = services.training_run_create(
            profile=form.validated_data["profile"],
            queue=form.validated_data.get("queue"),
            overrides=form.overrides(),
            user=request.user,
        )
    except DomainError as exc:
        messages.error(request, f"The run was not started: {exc.message}")
        return redirect("registry_home")
    messages.success(request, f"Run {run.pk} queued on the {run.queue} queue.")
    return redirect("registry_run", run_id=run.pk)


@require_GET
@admin_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get(run_id=run_id)
    if run is None:
        raise Http404(f"There is no training run {run_id}.")
    version = getattr(run, "version", None) if run.status == "done" else None
    return render(
        request,
        "registry/run.html",
        {
            "run": run,
            "folds": selectors.run_folds(run=run),
            "version": version,
            "silent_queues": silent_queues(also=(run.queue,))
            if run.status in ("queued", "running")
            else [],
        },
    )


def _post_action(request, action, success: str, target: str, **kwargs):
    try:
        result = action()
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success.format(result=result))
    return redirect(target, **kwargs)


@require_POST
@admin_required
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    return _post_action(
        request,
        lambda: services.training_run_cancel(run_id=run_id, user=request.user),
        "Cancel requested; the run stops within a training step.",
        "registry_run",
        run_id=run_id,
    )


@require_POST
@admin_required
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        run = services.training_run_retry(run_id=run_id, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("registry_run", run_id=run_id)
    messages.success(request, f"Run {run.pk} queued again (retry of run {run_id}).")
    return redirect("registry_run", run_id=run.pk)


@require_GET
@admin_required
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = selectors.version_get(version_id=version_id)
    if version is None:
        raise Http404(f"There is no model version {version_id}.")
    page = Paginator(selectors.predictions_for_version(version=version), 50).get_page(
        request.GET.get("page")
    )
    decision = selectors.version_decision(version=version)
    return render(
        request,
        "registry/version.html",
        {
            "version": version,
            "active": selectors.version_active(),
            "metric_rows": _metric_rows(version.metrics),
            "folds": version.metrics.get("folds", []),
            "page": page,
            "n_predictions": page.paginator.count,
            "events": selectors.version_event_history(version=version, limit=20),
            "decision": decision,
            "paired": [_paired_row(version, decision.evidence)]
            if decision and decision.evidence
            else [],
            "latent": selectors.version_vs_latent_quality(version=version),
        },
    )


@require_GET
@admin_required
def versions_compare(request: HttpRequest) -> HttpResponse:
    ids = []
    for raw in request.GET.getlist("v"):
        try:
            ids.append(int(raw))
        except ValueError:
            messages.error(request, f"{raw!r} is not a version id.")
    if len(ids) > COMPARE_MAX:
        messages.info(request, f"Compared the first {COMPARE_MAX} versions chosen.")
        ids = ids[:COMPARE_MAX]
    versions = selectors.versions_by_id(version_ids=ids)
    if not versions:
        versions = list(selectors.version_list()[:4])
    rows = [
        {
            "name": key,
            "cells": [
                (v.metrics.get("mean", {}).get(key), v.metrics.get("std", {}).get(key))
                for v in versions
            ],
        }
        for key in METRIC_KEYS
    ]
    active = selectors.version_active()
    candidates = [v for v in versions if active is not None and v.pk != active.pk]
    found = (
        comparison.paired_comparisons_cached(candidates=candidates, active=active)
        if candidates
        else []
    )
    paired = [_paired_row(v, evidence) for v, evidence in zip(candidates, found)]
    choices = selectors.version_choices(limit=COMPARE_CHOICES)
    listed = {pk for pk, _ in choices}
    choices += [(v.pk, v.number) for v in versions if v.pk not in listed]
    return render(
        request,
        "registry/compare.html",
        {
            "versions": versions,
            "rows": rows,
            "choices": sorted(choices, key=lambda c: -c[1]),
            "chosen": {v.pk for v in versions},
            "compare_max": COMPARE_MAX,
            "active": active,
            "paired": paired,
        },
    )


@require_POST
@admin_required
def version_promote(request: HttpRequest, version_id: int) -> HttpResponse:
    active = selectors.version_active()
    was = f" (was v{active.number})" if active else ""
    return _post_action(
        request,
        lambda: services.model_version_promote(
            version_id=version_id, user=request.user
        ),
        "Promoted: v{result.number} is the active version now"
        + was
        + "; clips it has not predicted are being predicted.",
        "registry_home",
    )


@require_POST
@admin_required
def version_rollback(request: HttpRequest) -> HttpResponse:
    return _post_action(
        request,
        lambda: services.model_version_rollback(user=request.user),
        "Rolled back: v{result.number} is the active version again.",
        "registry_home",
    )
