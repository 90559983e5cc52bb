"""Reads for the model loop: votes as they stood at a cutoff, runs, versions and
predictions. Everything here is for administrators and workers; no expert-facing
view calls it."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from annotation.models import GRADES, Clip, ClipDistribution, Vote, VoteHistory
from modeling.metrics import chance_metrics
from registry.models import (
    FINISHED,
    ModelVersion,
    Prediction,
    RunStatus,
    Snapshot,
    TrainingFold,
    TrainingRun,
    VersionEvent,
)

_GRADE_INDEX = {g: i for i, g in enumerate(GRADES)}

# Columns no list or page shows: a snapshot's clip ids (100,000 at lab scale, and
# as many fully voted ones), a run's resolved config. Lists leave them in the
# database; whoever needs them reads them for one row.
SNAPSHOT_CLIP_LISTS = ("clip_ids", "fully_voted_ids")
_VERSION_SNAPSHOT_LISTS = tuple(f"snapshot__{f}" for f in SNAPSHOT_CLIP_LISTS)


def vote_counts_at(*, cutoff: datetime) -> dict[int, list[int]]:
    """Per active clip, the panel's grade counts as they stood at ``cutoff``.

    Each expert's vote is the grade of their last history entry (create or change)
    at or before the cutoff, so votes cast or changed later do not count. A vote
    with no history at all (written by an import) counts with its current grade
    if it was made, and last changed, before the cutoff. Repeat votes (the
    consistency probes) are not panel votes.
    """
    grade_of: dict[tuple[int, int], str] = {}
    history = (
        VoteHistory.objects.filter(is_repeat=False, clip__is_active=True)
        .order_by("at", "id")
        .values_list("clip_id", "expert_id", "grade", "at")
    )
    with_history = set()
    for clip_id, expert_id, grade, at in history.iterator(chunk_size=5000):
        with_history.add((clip_id, expert_id))
        if at <= cutoff:
            grade_of[(clip_id, expert_id)] = grade
    plain = Vote.objects.filter(
        clip__is_active=True, created_at__lte=cutoff, updated_at__lte=cutoff
    ).values_list("clip_id", "expert_id", "grade")
    for clip_id, expert_id, grade in plain.iterator(chunk_size=5000):
        if (clip_id, expert_id) not in with_history:
            grade_of[(clip_id, expert_id)] = grade
    counts: dict[int, list[int]] = {}
    for (clip_id, _), grade in grade_of.items():
        counts.setdefault(clip_id, [0] * len(GRADES))[_GRADE_INDEX[grade]] += 1
    return counts


def snapshot_latest() -> Snapshot | None:
    return snapshot_list().first()


def snapshot_list() -> QuerySet[Snapshot]:
    """Newest first, without the clip id lists (a page of 100 would read
    millions of ids)."""
    return Snapshot.objects.defer(*SNAPSHOT_CLIP_LISTS).order_by("-created_at", "-id")


def votes_changed_since(*, cutoff: datetime) -> bool:
    return (
        VoteHistory.objects.filter(at__gt=cutoff).exists()
        or Vote.objects.filter(updated_at__gt=cutoff).exists()
    )


def fully_voted_clip_ids() -> set[int]:
    """Active clips holding every vote they will get (VOTES_PER_CLIP)."""
    return set(
        ClipDistribution.objects.filter(
            clip__is_active=True, n_votes__gte=settings.VOTES_PER_CLIP
        ).values_list("clip_id", flat=True)
    )


def clips_fully_voted_since(*, snapshot: Snapshot | None) -> int:
    """How many clips became fully voted since ``snapshot`` (all, without one)."""
    done = fully_voted_clip_ids()
    if snapshot is None:
        return len(done)
    return len(done - set(snapshot.fully_voted_ids))


def run_list() -> QuerySet[TrainingRun]:
    """Newest first, each with its snapshot, starter and version (one query for
    a page, however long), without the config and the snapshot's clip lists."""
    return (
        TrainingRun.objects.select_related("snapshot", "created_by", "version")
        .defer("config", *_VERSION_SNAPSHOT_LISTS, "version__metrics")
        .order_by("-created_at", "-id")
    )


def run_get(*, run_id: int) -> TrainingRun | None:
    return (
        TrainingRun.objects.select_related("snapshot", "created_by", "version")
        .defer(*_VERSION_SNAPSHOT_LISTS, "version__metrics")
        .filter(pk=run_id)
        .first()
    )


def run_folds(*, run: TrainingRun) -> list[TrainingFold]:
    return list(run.folds.order_by("index"))


def runs_active() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.exclude(status__in=FINISHED)


def folds_running() -> QuerySet[TrainingFold]:
    return TrainingFold.objects.filter(
        status=RunStatus.RUNNING, run__status=RunStatus.RUNNING
    ).select_related("run")


def version_active() -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(is_active=True)
        .select_related("snapshot")
        .defer(*_VERSION_SNAPSHOT_LISTS)
        .first()
    )


def activation_stack() -> list[int]:
    """Version ids in the order they were made active, as a stack: a promotion
    pushes, a rollback pops back to the version below (replayed from the
    history, oldest first)."""
    stack: list[int] = []
    events = (
        VersionEvent.objects.exclude(action=VersionEvent.Action.HELD)
        .order_by("id")
        .values_list("version_id", "action")
    )
    for version_id, action in events:
        if action == VersionEvent.Action.ROLLED_BACK:
            if stack:
                stack.pop()
            if not stack or stack[-1] != version_id:
                stack.append(version_id)  # history from before the stack rule
        elif not stack or stack[-1] != version_id:
            stack.append(version_id)
    return stack


def version_rollback_target(*, active: ModelVersion) -> ModelVersion | None:
    """The version that was active before ``active`` (what a rollback restores),
    or None when ``active`` was the first active version. Rollback is history:
    two rollbacks after v3 go to v2, then v1 (never back to v3)."""
    stack = activation_stack()
    if not stack or stack[-1] != active.pk or len(stack) < 2:
        return None
    return ModelVersion.objects.filter(pk=stack[-2]).first()


def version_list(*, with_metrics: bool = True) -> QuerySet[ModelVersion]:
    """Newest first, each with its snapshot (not its clip lists); callers slice.
    Without ``with_metrics`` the per-fold metrics stay in the database too."""
    rows = ModelVersion.objects.select_related("snapshot").defer(
        *_VERSION_SNAPSHOT_LISTS
    )
    if not with_metrics:
        rows = rows.defer("metrics")
    return rows.order_by("-number")


def versions_by_id(*, version_ids: list[int]) -> list[ModelVersion]:
    """The versions of ``version_ids`` that exist, in that order (one query)."""
    found = {v.pk: v for v in version_list().filter(pk__in=version_ids)}
    return [found[i] for i in dict.fromkeys(version_ids) if i in found]


def version_choices(*, limit: int) -> list[tuple[int, int]]:
    """(id, number) of the newest ``limit`` versions, for a picker."""
    return list(
        ModelVersion.objects.order_by("-number").values_list("pk", "number")[:limit]
    )


def version_get(*, version_id: int) -> ModelVersion | None:
    return (
        ModelVersion.objects.select_related("snapshot")
        .defer(*_VERSION_SNAPSHOT_LISTS)
        .filter(pk=version_id)
        .first()
    )


def version_event_history(*, version: ModelVersion, limit: int = 20) -> list:
    """The version's promotions and rollbacks, newest first."""
    return list(
        version.events.select_related("by", "previous").defer("previous__metrics")[
            :limit
        ]
    )


def version_decision(*, version: ModelVersion) -> VersionEvent | None:
    """The automatic decision after registration (promoted or held), with the
    reason and the paired comparison it rested on."""
    return (
        version.events.filter(
            action__in=(VersionEvent.Action.AUTO_PROMOTED, VersionEvent.Action.HELD)
        )
        .select_related("by", "previous")
        .first()
    )


def version_events(*, limit: int = 50) -> QuerySet[VersionEvent]:
    return VersionEvent.objects.select_related("version", "previous", "by").defer(
        "version__metrics", "previous__metrics"
    )[:limit]


def predictions_for_version(
    *, version: ModelVersion, clip_ids: list[int] | None = None
) -> QuerySet[Prediction]:
    rows = Prediction.objects.filter(version=version)
    if clip_ids is not None:
        rows = rows.filter(clip_id__in=clip_ids)
    return rows.order_by("clip_id")


def clips_without_prediction(*, version: ModelVersion) -> list[int]:
    """Active clips the version has not predicted yet, by id."""
    done = Prediction.objects.filter(version=version).values("clip_id")
    return list(
        Clip.objects.filter(is_active=True)
        .exclude(array_file="")
        .exclude(pk__in=done)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def version_vs_latent_quality(*, version: ModelVersion) -> dict | None:
    """Synthetic snapshots only: Spearman correlation of the known latent quality
    with the out-of-fold predicted mean grade, and with the panel's mean grade.

    Both are negated so that higher is better (quality high, grade A=0 low); the
    mean-distribution baseline predicts one value for every clip and has none.
    """
    import numpy as np
    from scipy.stats import spearmanr

    if not version.snapshot.is_synthetic:
        return None
    rows = list(
        Prediction.objects.filter(
            version=version,
            source=Prediction.Source.OUT_OF_FOLD,
            clip__latent_quality__isnull=False,
        ).values_list(
            "p_a", "p_b", "p_c", "p_d", "p_e", "clip__latent_quality", "clip_id"
        )
    )
    if len(rows) < 3:
        return None
    probs = np.array([r[:5] for r in rows])
    latent = np.array([r[5] for r in rows])
    grades = np.arange(5)
    counts = {
        d.clip_id: [d.n_a, d.n_b, d.n_c, d.n_d, d.n_e]
        for d in ClipDistribution.objects.filter(clip_id__in=[r[6] for r in rows])
    }
    panel = np.array(
        [np.dot(counts[r[6]], grades) / max(1, sum(counts[r[6]])) for r in rows]
    )
    model_rho = spearmanr(-(probs @ grades), latent).statistic
    panel_rho = spearmanr(-panel, latent).statistic
    return {
        "n": len(rows),
        "model_rho": float(model_rho),
        "panel_rho": float(panel_rho),
    }


def version_oof(*, version: ModelVersion) -> dict:
    """The version's out-of-fold predictions as registered (artifact
    ``oof_predictions.jsonl``): clip ids, patient pseudonyms, panel distributions at
    the snapshot's cutoff and predictions, as arrays."""
    import json

    import numpy as np

    from registry import storage

    path = storage.absolute(version.artifact_path) / "oof_predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return {
        "clip_ids": [int(r["clip_id"]) for r in rows],
        "patients": [r["patient_id"] for r in rows],
        "target": np.array([r["target"] for r in rows], dtype=float),
        "pred": np.array([r["pred"] for r in rows], dtype=float),
    }


FIGURE_POINTS = 2000
# label permutations behind the chance column (one metrics_all each)
CHANCE_PERMUTATIONS = 5


PANEL_REPORT_BOOT = 200  # bootstrap resamples of the model dashboard's intervals


def version_panel_report(
    *, version: ModelVersion, n_boot: int = PANEL_REPORT_BOOT
) -> dict:
    """Everything the model-vs-panel dashboard shows for one version.

    The version's part (its out-of-fold file read once, the bootstraps over
    patients: tens of seconds at 100,000 clips) never changes and is cached for
    good; the experts' part is a few comparisons with the cached panel
    statistics, made on each request, so a refresh of those statistics does not
    send every version's report back to the bootstraps."""
    from annotation.selectors import panel_statistics_latest
    from registry import evaluation

    report = _version_panel_figures(version=version, n_boot=n_boot)
    statistics = panel_statistics_latest()
    experts = statistics.data.get("experts", []) if statistics else []
    as_expert = evaluation.model_among_experts(
        report["model_scores"],
        expert_emd=[e["emd"] for e in experts],
        expert_within_one=[e["within_one"] for e in experts],
        expert_bias=[e["bias"] for e in experts],
    )
    return report | {
        "as_expert": as_expert,
        "human_baseline_emd": statistics.data.get("human_baseline_emd")
        if statistics
        else None,
        "sentence": evaluation.sentence(as_expert),
    }


def cache_is_shared() -> bool:
    """Whether the default cache is one every process reads (Redis, files), not
    a per-process memory (``CACHE_URL=local``) or none."""
    backend = settings.CACHES["default"]["BACKEND"]
    return "locmem" not in backend and "dummy" not in backend


def version_panel_figures_warm(*, version: ModelVersion) -> bool:
    """Compute and cache the version's part of the model dashboard now (a task
    queued once a version is registered), so an admin's first view does not wait
    for the bootstraps (58 s at 100,000 clips). Only with a shared cache: a
    per-process one would keep the figures in the worker, out of the web
    processes' reach. True when the figures were cached."""
    if not cache_is_shared():
        return False
    _version_panel_figures(version=version, n_boot=PANEL_REPORT_BOOT)
    return True


def _version_panel_figures(*, version: ModelVersion, n_boot: int) -> dict:
    from django.core.cache import cache

    from registry import evaluation

    stamp = version.created_at.isoformat()
    key = f"registry:panel-figures:{version.pk}:{stamp}:{n_boot}:{FIGURE_POINTS}"
    report = cache.get(key)
    if report is not None:
        return report
    oof = version_oof(version=version)
    pred, target, patients = oof["pred"], oof["target"], oof["patients"]
    predicted_mean, panel_mean = evaluation.mean_grades(pred, target)
    # The page draws charts, not every clip: beyond FIGURE_POINTS clips a
    # sample (scatter) and box figures (HI) keep the page the same size.
    shown = evaluation.sample_indices(len(pred), limit=FIGURE_POINTS)
    report = {
        "n_clips": len(pred),
        "n_patients": len(set(patients)),
        "metrics": evaluation.bootstrap_over_patients(
            pred, target, patients, n_boot=n_boot
        ),
        # the chance floor of every figure: each clip given another clip's panel
        "chance": chance_metrics(target, n_permutations=CHANCE_PERMUTATIONS),
        "confusion": evaluation.mode_confusion(pred, target),
        "predicted_mean": [predicted_mean[i] for i in shown],
        "panel_mean": [panel_mean[i] for i in shown],
        "mean_grade_sampled_from": len(pred) if len(shown) < len(pred) else None,
        "calibration": evaluation.calibration(pred, target),
        "hi": evaluation.hi_by_class(pred, target, max_points=FIGURE_POINTS),
        "model_scores": evaluation.model_vote_scores(
            pred, target, patients, n_boot=n_boot
        ),
    }
    cache.set(key, report, timeout=30 * 24 * 3600)  # its files never change
    return report


def clip_predictions(*, clip_id: int, limit: int = 50) -> list[Prediction]:
    """The newest ``limit`` versions' predictions of a clip, newest version first
    (admins)."""
    return list(
        Prediction.objects.filter(clip_id=clip_id)
        .select_related("version")
        .defer("version__metrics")
        .order_by("-version__number")[:limit]
    )


def clip_prediction_active(*, clip_id: int) -> Prediction | None:
    """The active version's prediction of a clip, if it made one."""
    return (
        Prediction.objects.filter(clip_id=clip_id, version__is_active=True)
        .select_related("version")
        .defer("version__metrics")
        .first()
    )


REVIEW_ROWS = 50


REVIEW_FILTERS = ("disagree", "split", "model_unsure", "panel_unsure")


def version_clip_rows(*, version: ModelVersion, which: str) -> list:
    """Clips to review for a version, by ``which``: ``disagree`` (largest
    model-panel EMD), ``split`` (the panel most divided: highest entropy),
    ``model_unsure`` (predicted entropy well above the panel's) or
    ``panel_unsure`` (the reverse). Out-of-fold clips only, the first
    REVIEW_ROWS of each.

    Cached: the out-of-fold file and the panel distributions in it never change,
    so it is read once per version for all four lists, not once a request."""
    from django.core.cache import cache

    if which not in REVIEW_FILTERS:
        raise ValueError(f"unknown filter {which!r}")
    stamp = version.created_at.isoformat()
    key = f"registry:review-rows:{version.pk}:{stamp}:{REVIEW_ROWS}"
    lists = cache.get(key)
    if lists is None:
        lists = _review_lists(version=version, limit=REVIEW_ROWS)
        cache.set(key, lists, timeout=7 * 24 * 3600)
    return lists[which]


def _review_lists(*, version: ModelVersion, limit: int) -> dict[str, list]:
    import numpy as np

    from modeling.metrics import emd_per_clip

    oof = version_oof(version=version)
    pred, target = oof["pred"], oof["target"]
    if not len(pred):
        return {which: [] for which in REVIEW_FILTERS}

    def entropy(p):
        q = np.clip(p, 1e-12, 1)
        return -(p * np.log(q)).sum(axis=1) / np.log(5)

    emd = emd_per_clip(pred, target)
    h_pred, h_panel = entropy(pred), entropy(target)
    scores = {
        "disagree": emd,
        "split": h_panel,
        "model_unsure": h_pred - h_panel,
        "panel_unsure": h_panel - h_pred,
    }
    return {
        which: [
            {
                "clip_id": oof["clip_ids"][i],
                "emd": float(emd[i]),
                "pred_entropy": float(h_pred[i]),
                "panel_entropy": float(h_panel[i]),
                "pred": pred[i].round(3).tolist(),
                "panel": target[i].round(3).tolist(),
            }
            for i in np.argsort(-score)[:limit]
        ]
        for which, score in scores.items()
    }
