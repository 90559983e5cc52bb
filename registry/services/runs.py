"""Training runs: start, cancel, retry (admins), and the state changes workers make.

A run's folds are rows (``TrainingFold``), each trained by its own task on the
run's queue; the state lives in the database, so a restart of the web or of a
worker loses nothing. Transitions are conditional updates, so two workers (or a
worker and an admin) racing on one run cannot both win.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.errors import DomainError, InvalidInput
from annotation.services.enqueue import TRAINING_FOLD, TRAINING_RUN_START, task_send
from modeling.config import ConfigError, config_to_dict
from registry import selectors, storage
from registry.models import FINISHED, RunStatus, TrainingFold, TrainingRun
from registry.profiles import profile_get

LOG_TAIL_LINES = 60


class RunNotFound(DomainError):
    status_code = 404


class RunStateConflict(DomainError):
    status_code = 409


def _log_append(text: str, line: str) -> str:
    stamp = timezone.now().strftime("%H:%M:%S")
    lines = [*text.splitlines(), f"{stamp} {line}"]
    return "\n".join(lines[-LOG_TAIL_LINES:])


def run_log(*, run_id: int, line: str) -> None:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        run.log_tail = _log_append(run.log_tail, line)
        run.save(update_fields=["log_tail"])


def training_run_create(
    *,
    profile: str,
    overrides: dict | None = None,
    queue: str | None = None,
    user=None,
    trigger: str = TrainingRun.Trigger.MANUAL,
    retry_of: TrainingRun | None = None,
) -> TrainingRun:
    """Queue a run of ``profile``; the worker takes the snapshot and trains.

    When the broker cannot be reached the run ends failed at once with a message
    that says so (the page shows it); nothing stays "queued" for ever.
    """
    try:
        chosen = profile_get(profile)
        cfg = chosen.config_resolve(overrides)
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from exc
    queue = queue or chosen.queues[0]
    if queue not in chosen.queues:
        raise InvalidInput(
            f"profile {profile!r} runs on {' or '.join(chosen.queues)}, not {queue!r}"
        )
    run = TrainingRun.objects.create(
        profile=profile,
        overrides=dict(overrides or {}),
        config=config_to_dict(cfg),
        queue=queue,
        trigger=trigger,
        created_by=user,
        retry_of=retry_of,
        log_tail=_log_append("", f"queued ({profile} on the {queue} queue)"),
    )
    task_send(
        name=TRAINING_RUN_START,
        kwargs={"run_id": run.pk},
        on_unreachable=lambda message: training_run_fail(
            run_id=run.pk, message=f"Could not start: {message}"
        ),
    )
    return run


def training_run_cancel(*, run_id: int, user=None) -> TrainingRun:
    """Ask a run to stop: a queued run, or a running one with no fold training
    (folds waiting for a worker, or their worker dead), is cancelled now; one
    that is training stops within a training step (the fold checks the flag)."""
    run = selectors.run_get(run_id=run_id)
    if run is None:
        raise RunNotFound(f"There is no training run {run_id}.")
    if run.status in FINISHED:
        raise RunStateConflict(f"Run {run_id} has already ended ({run.status}).")
    who = getattr(user, "username", "") or "an admin"
    TrainingRun.objects.filter(pk=run_id).update(cancel_requested=True)
    run_log(run_id=run_id, line=f"cancel requested by {who}")
    if run.status == RunStatus.QUEUED:
        run_finish(run_id=run_id, status=RunStatus.CANCELLED, message="")
    elif not _a_fold_is_training(run_id=run_id):
        # Nothing would ever see the flag (folds waiting for a worker, or their
        # worker gone): the run ends now; a fold delivered later finds it ended.
        run_finish(
            run_id=run_id,
            status=RunStatus.CANCELLED,
            message=f"cancelled by {who}; no fold was training",
        )
    run.refresh_from_db()
    return run


def _heartbeat_fresh_after(now):
    """A heartbeat after this moment means the fold's worker is alive."""
    return now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS)


def _a_fold_is_training(*, run_id: int) -> bool:
    """A fold of the run is running with a fresh heartbeat (it sees the flag)."""
    return TrainingFold.objects.filter(
        run_id=run_id,
        status=RunStatus.RUNNING,
        heartbeat_at__gt=_heartbeat_fresh_after(timezone.now()),
    ).exists()


def training_run_retry(*, run_id: int, user=None) -> TrainingRun:
    """A new run with the failed (or cancelled) run's profile, overrides and queue."""
    run = selectors.run_get(run_id=run_id)
    if run is None:
        raise RunNotFound(f"There is no training run {run_id}.")
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise RunStateConflict(
            f"Only a failed or cancelled run can be retried; run {run_id} is "
            f"{run.status}."
        )
    return training_run_create(
        profile=run.profile,
        overrides=run.overrides,
        queue=run.queue,
        user=user,
        trigger=run.trigger,
        retry_of=run,
    )


# --- worker side ----------------------------------------------------------------


def run_finish(*, run_id: int, status: str, message: str = "") -> bool:
    """End an unfinished run (done, failed or cancelled); removes its working
    folder. False when it had already ended (the first ending wins)."""
    now = timezone.now()
    changed = (
        TrainingRun.objects.filter(pk=run_id)
        .exclude(status__in=FINISHED)
        .update(status=status, finished_at=now, error_message=message[:4000])
    )
    if changed:
        TrainingFold.objects.filter(run_id=run_id).exclude(status__in=FINISHED).update(
            status=RunStatus.CANCELLED, finished_at=now
        )
        run_log(run_id=run_id, line=status + (f": {message}" if message else ""))
        if status != RunStatus.DONE:
            storage.remove_tree(storage.registry_dir("runs", str(run_id)))
    return bool(changed)


def training_run_fail(*, run_id: int, message: str) -> bool:
    return run_finish(run_id=run_id, status=RunStatus.FAILED, message=message)


def run_mark_running(*, run_id: int, snapshot, n_folds: int) -> bool:
    """Queued -> running with its snapshot and fold rows (idempotent)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status in FINISHED:
            return False
        if run.status == RunStatus.QUEUED:
            run.status = RunStatus.RUNNING
            run.started_at = timezone.now()
            run.snapshot = snapshot
            run.save(update_fields=["status", "started_at", "snapshot"])
        for index in [*range(n_folds), TrainingFold.FINAL]:
            TrainingFold.objects.get_or_create(run=run, index=index)
    return True


def folds_send(*, run: TrainingRun) -> int:
    """Send a task for every queued fold of ``run`` to its queue."""
    folds = list(run.folds.filter(status=RunStatus.QUEUED))
    for fold in folds:
        task_send(
            name=TRAINING_FOLD,
            kwargs={"run_id": run.pk, "index": fold.index, "attempt": fold.attempt},
            queue=run.queue,
            on_unreachable=lambda message, run_id=run.pk: training_run_fail(
                run_id=run_id, message=f"Could not queue the folds: {message}"
            ),
        )
    return len(folds)


def fold_claim(*, run_id: int, index: int, attempt: int, host: str) -> bool:
    """Mark the fold running for this delivery, or say no: the run ended, the fold
    is done, the message is an older attempt, or another worker's heartbeat on it
    is fresh (Redis re-delivers long tasks; the same fold must not train twice).
    A stale running fold of the same attempt (its worker died) restarts."""
    now = timezone.now()
    fresh = _heartbeat_fresh_after(now)
    with transaction.atomic():
        fold = (
            TrainingFold.objects.select_for_update()
            .select_related("run")
            .filter(run_id=run_id, index=index)
            .first()
        )
        if fold is None or fold.run.status != RunStatus.RUNNING:
            return False
        if fold.attempt != attempt or fold.status in FINISHED:
            return False
        if fold.status == RunStatus.RUNNING and (
            fold.heartbeat_at and fold.heartbeat_at > fresh
        ):
            return False
        fold.status = RunStatus.RUNNING
        fold.started_at = fold.heartbeat_at = now
        fold.worker_host = host[:255]
        fold.error_message = ""
        fold.progress = {}
        fold.save()
    return True


def fold_heartbeat(
    *, run_id: int, index: int, progress: dict, log_line: str | None = None
) -> bool:
    """Store progress; returns True when the run was asked to stop."""
    updates = {"progress": progress, "heartbeat_at": timezone.now()}
    if log_line is not None:
        with transaction.atomic():
            fold = TrainingFold.objects.select_for_update().get(
                run_id=run_id, index=index
            )
            fold.log_tail = _log_append(fold.log_tail, log_line)
            fold.progress, fold.heartbeat_at = progress, updates["heartbeat_at"]
            fold.save(update_fields=["log_tail", "progress", "heartbeat_at"])
    else:
        TrainingFold.objects.filter(run_id=run_id, index=index).update(**updates)
    return (
        TrainingRun.objects.filter(pk=run_id)
        .exclude(status=RunStatus.RUNNING, cancel_requested=False)
        .exists()
    )


def fold_mark(
    *,
    run_id: int,
    index: int,
    status: str,
    metrics: dict | None = None,
    message: str = "",
    device_name: str = "",
    peak_memory_mb: float | None = None,
) -> None:
    TrainingFold.objects.filter(run_id=run_id, index=index).update(
        status=status,
        metrics=metrics or {},
        error_message=message[:4000],
        finished_at=timezone.now(),
        device_name=device_name[:255],
        peak_memory_mb=peak_memory_mb,
    )


def run_claim_registration(*, run_id: int) -> bool:
    """True for exactly one caller once every fold of a running run is done."""
    folds = TrainingFold.objects.filter(run_id=run_id)
    if not folds.exists() or folds.exclude(status=RunStatus.DONE).exists():
        return False
    return bool(
        TrainingRun.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, registering_at__isnull=True
        ).update(registering_at=timezone.now())
    )


def run_timings_update(*, run_id: int, **seconds: float) -> None:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        run.timings = {**run.timings, **{k: round(v, 3) for k, v in seconds.items()}}
        run.save(update_fields=["timings"])


def training_runs_reap(*, stale_after_s: float | None = None) -> list[int]:
    """Folds whose worker stopped sending progress: the run fails with a message
    that says so, or (TRAINING_LOST_RUN=requeue, once) the fold is queued again.
    Returns the ids of the runs touched."""
    limit = stale_after_s or settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS
    stale = timezone.now() - timedelta(seconds=limit)
    touched, failed = [], {}
    for fold in selectors.folds_running().filter(heartbeat_at__lt=stale):
        name = (
            "the final model"
            if fold.index == TrainingFold.FINAL
            else (f"fold {fold.index}")
        )
        last = fold.heartbeat_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        lost = (
            f"The worker training {name} ({fold.worker_host or 'unknown host'}) "
            f"stopped reporting at {last}: it was killed, ran out of memory or "
            "lost its machine."
        )
        if settings.TRAINING_LOST_RUN == "requeue" and fold.attempt < 2:
            requeued = TrainingFold.objects.filter(
                pk=fold.pk, status=RunStatus.RUNNING, attempt=fold.attempt
            ).update(status=RunStatus.QUEUED, attempt=F("attempt") + 1)
            if requeued:
                run_log(run_id=fold.run_id, line=f"{lost} Queued {name} again.")
                folds_send(run=fold.run)
                touched.append(fold.run_id)
            continue
        # The lost fold failed, as a fold whose trainer raised does; every lost
        # fold is marked before its run fails, since failing the run cancels the
        # folds still waiting or training.
        marked = TrainingFold.objects.filter(
            pk=fold.pk, status=RunStatus.RUNNING, attempt=fold.attempt
        ).update(
            status=RunStatus.FAILED, error_message=lost, finished_at=timezone.now()
        )
        if marked:
            failed.setdefault(fold.run_id, lost)
    for run_id, lost in failed.items():
        if training_run_fail(
            run_id=run_id, message=f"{lost} No model version was registered."
        ):
            touched.append(run_id)
    return touched


def retrain_if_due(
    *, trigger: str, profile: str = "clinic", min_new_clips: int = 0
) -> TrainingRun | None:
    """The schedules' check (cheap: a few counts). Nothing starts while a run is
    queued or running, or when no vote changed since the last snapshot; a
    ``votes`` trigger also needs ``min_new_clips`` clips fully voted since it."""
    if selectors.runs_active().exists():
        return None
    last = selectors.snapshot_latest()
    if last is not None and not selectors.votes_changed_since(cutoff=last.cutoff):
        return None
    if trigger == TrainingRun.Trigger.VOTES:
        if selectors.clips_fully_voted_since(snapshot=last) < max(1, min_new_clips):
            return None
    elif trigger != TrainingRun.Trigger.NIGHTLY:
        raise InvalidInput(
            f"unknown schedule trigger {trigger!r}; use nightly or votes"
        )
    return training_run_create(profile=profile, trigger=trigger)
