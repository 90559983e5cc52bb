"""Model versions: registration (by the worker, once its artifacts are complete),
promotion and rollback (automatic or by an admin, each recorded)."""

from __future__ import annotations

from pathlib import Path

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Max

from annotation.db_locks import asks_for_retry, transaction_lock
from annotation.errors import DomainError
from annotation.services.enqueue import VERSION_FIGURES, VERSION_PREDICT, task_send
from registry import comparison, selectors, storage
from registry.models import ModelVersion, TrainingRun, VersionEvent
from registry.services.predictions import clip_priorities_refresh, predictions_store


class VersionNotFound(DomainError):
    status_code = 404


class VersionStateConflict(DomainError):
    status_code = 409


def model_version_register(
    *,
    run: TrainingRun,
    artifact_dir: Path,
    summary: dict,
    oof: list[tuple[int, list[float], int]],
    code_version: str,
) -> ModelVersion:
    """The version row and its out-of-fold predictions, in one transaction.

    ``artifact_dir`` is already complete and in place; ``oof`` holds
    (clip id, probabilities, fold) for every snapshot clip. A run registers once:
    a second call returns the first version.
    """
    existing = ModelVersion.objects.filter(run=run).first()
    if existing is not None:
        return existing
    baseline = summary.get("baseline_mean_distribution", {}).get("mean", {})
    for _ in range(3):  # two runs registering at once race for the number
        try:
            with transaction.atomic():
                number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
                version = ModelVersion.objects.create(
                    number=number,
                    run=run,
                    snapshot=run.snapshot,
                    profile=run.profile,
                    model_name=run.config["model"]["name"],
                    metrics=summary,
                    emd_mean=summary["mean"]["emd"],
                    emd_std=summary["std"]["emd"],
                    baseline_emd=baseline.get("emd"),
                    artifact_path=storage.relative(artifact_dir),
                    code_version=code_version,
                )
                predictions_store(version=version, rows=oof, source="oof")
                return version
        except IntegrityError:
            if ModelVersion.objects.filter(run=run).exists():
                return ModelVersion.objects.get(run=run)
    raise VersionStateConflict("could not number the new version; retry the run")


def version_figures_queue(*, version: ModelVersion) -> bool:
    """Queue the computation of the version's model-dashboard figures on the cpu
    queue (its predictions, on the version's queue, do not wait behind it), when
    the cache is one every process shares; True when queued."""
    if not selectors.cache_is_shared():
        return False
    task_send(name=VERSION_FIGURES, kwargs={"version_id": version.pk})
    return True


def promotion_reason(
    *, candidate: ModelVersion, active: ModelVersion | None
) -> tuple[bool, str, dict]:
    """(promote automatically?, why, the evidence): the candidate and the active
    version are scored on the candidate's snapshot, each on clips it never
    trained on (``registry.comparison``); only a paired EMD difference whose
    whole interval lies below zero promotes. The first version is promoted as
    such."""
    if active is None:
        return True, "first version: nothing was active", {}
    evidence = comparison.version_paired_comparison(candidate=candidate, active=active)
    found = comparison.comparison_sentence(evidence)
    better, verdict = comparison.comparison_verdict(evidence)
    if better:
        return True, f"{found} — better; promoted", evidence
    if "problem" in evidence:  # the sentence says why
        return False, f"{found}; waiting for an admin", evidence
    return False, f"{found} — {verdict}; waiting for an admin", evidence


class _ActiveChanged(Exception):
    """Another version became active while the candidate was being compared."""


ACTIVATION_LOCK = "registry.version-activation"


_ANY = object()


def _activate(
    *,
    version: ModelVersion,
    action: str,
    user=None,
    reason: str = "",
    evidence: dict | None = None,
    only_replacing=_ANY,
) -> ModelVersion:
    """Make ``version`` the active one. Activations run one at a time (a named
    lock, one lock order): the version active when this one starts is read
    after the lock, so the history always records it; PostgreSQL's rare
    requests to retry are honoured. With ``only_replacing`` (a version id, or
    None for none active) nothing changes unless that is still the active
    version (``_ActiveChanged``): the evidence was about it."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                transaction_lock(ACTIVATION_LOCK)
                previous = ModelVersion.objects.filter(is_active=True).first()
                previous_id = previous.pk if previous is not None else None
                if only_replacing is not _ANY and previous_id != only_replacing:
                    raise _ActiveChanged
                if previous is not None and previous.pk == version.pk:
                    raise VersionStateConflict(f"v{version.number} is already active.")
                ModelVersion.objects.filter(is_active=True).update(is_active=False)
                ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
                VersionEvent.objects.create(
                    version=version,
                    previous=previous,
                    action=action,
                    by=user,
                    reason=reason,
                    evidence=evidence or {},
                )
            break
        except OperationalError as exc:
            if attempt == 2 or not asks_for_retry(exc):
                raise
    version.refresh_from_db()
    clip_priorities_refresh(version=version)
    version_predict_request(version=version)
    return version


def version_auto_decide(*, version: ModelVersion) -> bool:
    """After registration: promote when clearly better than the active version
    on the same clips, else hold it for an admin with the reason and the
    evidence. True when promoted. Should another version become active while
    this one is compared, the comparison is made again with that one."""
    for _ in range(3):
        active = selectors.version_active()
        promote, reason, evidence = promotion_reason(candidate=version, active=active)
        if not promote:
            break
        try:
            _activate(
                version=version,
                action=VersionEvent.Action.AUTO_PROMOTED,
                reason=reason,
                evidence=evidence,
                only_replacing=active.pk if active is not None else None,
            )
        except _ActiveChanged:
            continue
        return True
    else:
        reason = (
            "the active version kept changing while this one was compared; "
            "waiting for an admin"
        )
        evidence = {}
    VersionEvent.objects.create(
        version=version,
        action=VersionEvent.Action.HELD,
        reason=reason,
        evidence=evidence,
    )
    return False


def model_version_promote(*, version_id: int, user, reason: str = "") -> ModelVersion:
    version = selectors.version_get(version_id=version_id)
    if version is None:
        raise VersionNotFound(f"There is no model version {version_id}.")
    return _activate(
        version=version,
        action=VersionEvent.Action.PROMOTED,
        user=user,
        reason=reason or "promoted by an admin",
    )


def model_version_rollback(*, user) -> ModelVersion:
    """Back to the version that was active before the current one."""
    active = selectors.version_active()
    if active is None:
        raise VersionStateConflict(
            "No version is active, so there is nothing to roll back."
        )
    target = selectors.version_rollback_target(active=active)
    if target is None:
        raise VersionStateConflict(
            f"v{active.number} was the first active version; there is no earlier "
            "one to roll back to."
        )
    return _activate(
        version=target,
        action=VersionEvent.Action.ROLLED_BACK,
        user=user,
        reason=f"rolled back from v{active.number}",
    )


def version_predict_request(
    *, version: ModelVersion, clip_ids: list[int] | None = None
):
    """Ask a worker on the version's queue to predict its missing clips."""
    kwargs = {"version_id": version.pk}
    if clip_ids is not None:
        kwargs["clip_ids"] = [int(c) for c in clip_ids]
    task_send(name=VERSION_PREDICT, kwargs=kwargs, queue=version.run.queue)
