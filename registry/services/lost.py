"""What a dead worker means for the model loop (the ``jobs`` reaper calls these):
a lost fold fails its run, or is queued again once (JOB_LOST_ACTION=requeue); a
start that died before the folds were sent is sent again (or the run fails); a
registration that died fails the run, or is run again once, and leaves no half
version; a prediction pass is picked up again by the periodic catch-up.
Every run so touched says what happened in its log."""

from __future__ import annotations

from django.conf import settings

from annotation.services.enqueue import (
    TRAINING_REGISTER,
    TRAINING_RUN_START,
    task_send,
)
from jobs.models import Heartbeat
from jobs.reaper import REQUEUED, lost_sentence
from jobs.selectors import requeued_before
from registry import storage
from registry.models import (
    FINISHED,
    ModelVersion,
    RunStatus,
    TrainingFold,
    TrainingRun,
    VersionEvent,
)
from registry.services.runs import (
    folds_send,
    run_finish,
    run_log,
    training_run_fail,
)

NO_VERSION = "No model version was registered."


def _requeue_allowed(row: Heartbeat) -> bool:
    """Once per job: the setting asks for it and no earlier loss was re-queued."""
    if settings.JOB_LOST_ACTION != "requeue":
        return False
    return not requeued_before(subject=row.subject)


def fold_lost(row: Heartbeat) -> str:
    run_id, index = row.ids
    name = "the final model" if index == TrainingFold.FINAL else f"fold {index}"
    lost = lost_sentence(row, f"training {name}")
    fold = TrainingFold.objects.filter(run_id=run_id, index=index).first()
    if fold is None or fold.status != RunStatus.RUNNING or fold.attempt != row.attempt:
        return "the fold had moved on"
    if _requeue_allowed(row):
        requeued = TrainingFold.objects.filter(
            pk=fold.pk, status=RunStatus.RUNNING, attempt=fold.attempt
        ).update(status=RunStatus.QUEUED, attempt=fold.attempt + 1)
        if requeued:
            run_log(run_id=run_id, line=f"{lost} Queued {name} again.")
            folds_send(run=TrainingRun.objects.get(pk=run_id))
            return f"{REQUEUED} as attempt {fold.attempt + 1}"
    # The lost fold failed, as a fold whose trainer raised does; then its run
    # fails, which stops the other folds (their workers see it within a beat).
    TrainingFold.objects.filter(
        pk=fold.pk, status=RunStatus.RUNNING, attempt=fold.attempt
    ).update(status=RunStatus.FAILED, error_message=lost)
    training_run_fail(run_id=run_id, message=f"{lost} {NO_VERSION}")
    return "the run failed"


def run_lost(row: Heartbeat) -> str:
    """The worker taking the snapshot (or sending the folds) died."""
    (run_id,) = row.ids
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None or run.status in FINISHED:
        return "the run had ended"
    lost = lost_sentence(row, "starting this run")
    if run.status == RunStatus.RUNNING:
        # Past marking running: the fold rows exist; any not yet sent are sent
        # now (a fold already delivered refuses the duplicate).
        sent = folds_send(run=run)
        run_log(run_id=run_id, line=f"{lost} Sent its {sent} waiting tasks again.")
        return f"{sent} fold tasks sent again"
    if _requeue_allowed(row):
        run_log(run_id=run_id, line=f"{lost} Queued its start again.")
        task_send(
            name=TRAINING_RUN_START,
            kwargs={"run_id": run_id, "attempt": row.attempt + 1},
            on_unreachable=lambda message: training_run_fail(
                run_id=run_id, message=f"Could not start again: {message}"
            ),
        )
        return f"{REQUEUED} as attempt {row.attempt + 1}"
    training_run_fail(run_id=run_id, message=f"{lost} {NO_VERSION}")
    return "the run failed"


def register_lost(row: Heartbeat) -> str:
    """The worker registering the version died: before the version row nothing of
    it stays; after it, the run ends done with that version."""
    (run_id,) = row.ids
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None or run.status in FINISHED:
        return "the run had ended"
    lost = lost_sentence(row, "registering this run's version")
    version = ModelVersion.objects.filter(run_id=run_id).first()
    if version is not None:
        if not VersionEvent.objects.filter(version=version).exists():
            VersionEvent.objects.create(
                version=version,
                action=VersionEvent.Action.HELD,
                reason=f"{lost} The version was registered; promote it by hand.",
            )
        run_finish(run_id=run_id, status=RunStatus.DONE)
        return f"v{version.number} was registered; the run is done"
    _half_version_remove(run_id)
    if _requeue_allowed(row) and TrainingRun.objects.filter(
        pk=run_id, status=RunStatus.RUNNING
    ).update(registering_at=None):
        run_log(run_id=run_id, line=f"{lost} Queued the registration again.")
        task_send(
            name=TRAINING_REGISTER,
            kwargs={"run_id": run_id, "attempt": row.attempt + 1},
            queue=run.queue,
            on_unreachable=lambda message: training_run_fail(
                run_id=run_id, message=f"Could not register again: {message}"
            ),
        )
        return f"{REQUEUED} as attempt {row.attempt + 1}"
    training_run_fail(run_id=run_id, message=f"{lost} {NO_VERSION}")
    return "the run failed"


def _half_version_remove(run_id: int) -> None:
    """Artifacts a registration left without a version row go."""
    models = storage.registry_dir("models")
    if models.is_dir():
        for folder in models.glob(f"run-{run_id}-*"):
            storage.remove_tree(folder)
    tmp = storage.registry_dir("tmp")
    if tmp.is_dir():
        for folder in tmp.glob(f"run-{run_id}-*"):
            storage.remove_tree(folder)


def predict_lost(row: Heartbeat) -> str:
    # Predictions are stored batch by batch and never twice; the periodic
    # catch-up sends the active version's missing clips again.
    return "the periodic catch-up predicts the rest"
