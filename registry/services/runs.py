"""Training runs: start, cancel, retry (admins), and the state changes workers make.

A run's folds are rows (``TrainingFold``), each trained by its own task on the
run's queue; the state lives in the database, so a restart of the web or of a
worker loses nothing. Transitions are conditional updates, so two workers (or a
worker and an admin) racing on one run cannot both win.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotation.errors import DomainError, InvalidInput
from annotation.services.enqueue import TRAINING_FOLD, TRAINING_RUN_START, task_send
from jobs.selectors import subject_alive, subjects_alive
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
    """Ask a run to stop, in any state: a queued run, or a running one that no live
    worker is on (folds waiting for a worker, or their worker dead), is cancelled
    now; one that a worker is on stops within a heartbeat (the worker's thread
    sees the flag) and a message delivered later finds the run ended."""
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
    elif not run_worked_on(run_id=run_id):
        # Nothing would ever see the flag (folds waiting for a worker, or their
        # worker gone): the run ends now; a fold delivered later finds it ended.
        run_finish(
            run_id=run_id,
            status=RunStatus.CANCELLED,
            message=f"cancelled by {who}; no worker was on it",
        )
    run.refresh_from_db()
    return run


def run_worked_on(*, run_id: int) -> bool:
    """A live worker is on the run: taking its snapshot, training a fold or
    registering its version (``jobs`` heartbeats)."""
    return (
        subject_alive(subject=f"run:{run_id}")
        or subject_alive(subject=f"register:{run_id}")
        or bool(subjects_alive(prefix=f"fold:{run_id}:"))
    )


def run_should_stop(*, run_id: int) -> bool:
    """The run ended (failed, cancelled) or was asked to stop: its workers stop."""
    return (
        TrainingRun.objects.filter(pk=run_id)
        .exclude(status=RunStatus.RUNNING, cancel_requested=False)
        .exists()
    )


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


def fold_should_stop(*, run_id: int, index: int, attempt: int) -> bool:
    """The run ended or was asked to stop, or this attempt no longer holds the
    fold (a newer one took over): its worker stops."""
    held = TrainingFold.objects.filter(
        run_id=run_id, index=index, attempt=attempt, status=RunStatus.RUNNING
    ).exists()
    return not held or run_should_stop(run_id=run_id)


def fold_claim(
    *,
    run_id: int,
    index: int,
    attempt: int,
    host: str,
    own_heartbeat: int | None = None,
) -> int | None:
    """The attempt this delivery trains the fold as, or None: the run ended, the
    fold is done, the message is older than the queued attempt, or a live worker
    is on the fold (Redis re-delivers long tasks; a fold must not train twice).
    A running fold whose worker is dead (a re-delivery after a killed child)
    restarts as the next attempt, so the dead one's late writes are refused."""
    now = timezone.now()
    subject = f"fold:{run_id}:{index}"
    with transaction.atomic():
        fold = (
            TrainingFold.objects.select_for_update()
            .select_related("run")
            .filter(run_id=run_id, index=index)
            .first()
        )
        if fold is None or fold.run.status != RunStatus.RUNNING:
            return None
        if fold.status == RunStatus.QUEUED and fold.attempt == attempt:
            pass
        elif fold.status == RunStatus.RUNNING and attempt <= fold.attempt:
            if subject_alive(subject=subject, exclude=own_heartbeat):
                return None
            fold.attempt += 1
        else:
            return None
        fold.status = RunStatus.RUNNING
        fold.started_at = fold.heartbeat_at = now
        fold.worker_host = host[:255]
        fold.error_message = ""
        fold.progress = {}
        fold.save()
    return fold.attempt


def fold_heartbeat(
    *,
    run_id: int,
    index: int,
    attempt: int,
    progress: dict,
    log_line: str | None = None,
) -> bool:
    """Store progress (only while this attempt holds the fold); returns True when
    the fold should stop: the run ended or was asked to, or a newer attempt took
    the fold over."""
    updates = {"progress": progress, "heartbeat_at": timezone.now()}
    mine = TrainingFold.objects.filter(
        run_id=run_id, index=index, attempt=attempt, status=RunStatus.RUNNING
    )
    if log_line is not None:
        with transaction.atomic():
            fold = mine.select_for_update().first()
            if fold is None:
                return True
            fold.log_tail = _log_append(fold.log_tail, log_line)
            fold.progress, fold.heartbeat_at = progress, updates["heartbeat_at"]
            fold.save(update_fields=["log_tail", "progress", "heartbeat_at"])
    elif not mine.update(**updates):
        return True
    return run_should_stop(run_id=run_id)


def fold_mark(
    *,
    run_id: int,
    index: int,
    attempt: int,
    status: str,
    metrics: dict | None = None,
    message: str = "",
    device_name: str = "",
    peak_memory_mb: float | None = None,
) -> bool:
    """End this attempt of the fold; False when it no longer holds the fold (a
    newer attempt took over, or the run ended and cancelled it)."""
    return (
        TrainingFold.objects.filter(
            run_id=run_id, index=index, attempt=attempt, status=RunStatus.RUNNING
        ).update(
            status=status,
            metrics=metrics or {},
            error_message=message[:4000],
            finished_at=timezone.now(),
            device_name=device_name[:255],
            peak_memory_mb=peak_memory_mb,
        )
        > 0
    )


def run_claim_registration(*, run_id: int):
    """For exactly one caller once every fold of a running run is done: the
    claim's token (its time), which the registration shows before it writes;
    None for everyone else."""
    folds = TrainingFold.objects.filter(run_id=run_id)
    if not folds.exists() or folds.exclude(status=RunStatus.DONE).exists():
        return None
    token = timezone.now()
    claimed = TrainingRun.objects.filter(
        pk=run_id, status=RunStatus.RUNNING, registering_at__isnull=True
    ).update(registering_at=token)
    return token if claimed else None


def run_registration_holds(*, run_id: int, token) -> bool:
    """The claim ``token`` still holds: the run runs and nobody re-claimed it."""
    return TrainingRun.objects.filter(
        pk=run_id, status=RunStatus.RUNNING, registering_at=token
    ).exists()


def run_timings_update(*, run_id: int, **seconds: float) -> None:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        run.timings = {**run.timings, **{k: round(v, 3) for k, v in seconds.items()}}
        run.save(update_fields=["timings"])


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
