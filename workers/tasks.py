"""Celery tasks: thin wrappers that re-read the world, call one service, record status.

Each task has an explicit name, the one the web side sends
(``annotation.services.enqueue``) and the settings route (``CELERY_TASK_ROUTES``).
Every task uses ``RecordedTask``: a task that works on a job (``SUBJECTS``) runs
inside a heartbeat (``jobs.liveness.alive``) that a thread refreshes for as long as
it runs, so the one reaper (``jobs.reaper``) can tell a dead worker's job from a
slow one; with a ``job_id`` keyword it marks that Job running, done or failed (with
the error text); with a ``recording_id`` keyword a failure also marks the Recording
failed, so nothing is left "processing" forever.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from annotation import services
from jobs import liveness
from jobs.reaper import delivery_admit, jobs_reap
from registry import selectors as registry_selectors
from registry import services as registry_services
from workers import presence, threads, training
from workers.export import dataset_export_run, dataset_import_run
from workers.preprocess import recording_inspect_run, recording_preprocess_run

assert presence  # connects the workers' own heartbeat to their start and stop
assert threads  # sets each worker process's compute threads

# The job each task works on, named from its arguments: the heartbeat's subject.
SUBJECTS = {
    "workers.tasks.panel_snapshot": lambda k: f"job:{k['job_id']}",
    "workers.tasks.dataset_export": lambda k: f"export:{k['job_id']}",
    "workers.tasks.dataset_import": lambda k: f"import:{k['job_id']}",
    "workers.tasks.recording_preprocess": lambda k: f"recording:{k['recording_id']}",
    "workers.tasks.recording_inspect": lambda k: f"preview:{k['recording_id']}",
    "workers.tasks.training_run_start": lambda k: f"run:{k['run_id']}",
    "workers.tasks.training_fold": lambda k: f"fold:{k['run_id']}:{k['index']}",
    "workers.tasks.training_run_register": lambda k: f"register:{k['run_id']}",
    "workers.tasks.version_predict": lambda k: f"predict:{k['version_id']}",
    "workers.tasks.panel_statistics_refresh": lambda k: "statistics:panel",
}


class RecordedTask(Task):
    """Base task: a heartbeat while it works on a job, and failures recorded on
    the job row (and recording) it was given."""

    def __call__(self, *args, **kwargs):
        subject = SUBJECTS.get(self.name)
        if subject is None:  # periodic checks: short, and beat runs them again
            return super().__call__(*args, **kwargs)
        subject = subject(kwargs)
        refused = delivery_admit(subject, max_deaths=settings.JOB_MAX_DELIVERIES)
        if refused:
            return {"subject": subject, "skipped": refused}
        with liveness.alive(
            subject,
            attempt=int(kwargs.get("attempt", 1)),
            task=self.name,
            worker=self.request.hostname or "",
        ):
            if kwargs.get("job_id") and not services.job_mark_running(
                job_id=kwargs["job_id"], celery_task_id=self.request.id or ""
            ):
                return {"job": kwargs["job_id"], "skipped": "ended or cancelled"}
            return super().__call__(*args, **kwargs)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if kwargs.get("job_id"):
            services.job_mark_failed(job_id=kwargs["job_id"], error=error)
        if kwargs.get("recording_id"):
            services.recording_mark_failed(
                recording_id=kwargs["recording_id"], message=error
            )
        if kwargs.get("run_id"):
            registry_services.training_run_fail(run_id=kwargs["run_id"], message=error)


@shared_task(base=RecordedTask, name="workers.tasks.panel_snapshot")
def panel_snapshot(*, job_id: int, clip_ids: list[int] | None = None) -> dict:
    """Summarize the panel's grade distributions into the job's result (idempotent)."""
    if clip_ids is not None and not all(isinstance(i, int) for i in clip_ids):
        raise ValueError(f"clip_ids must be a list of integers, got {clip_ids!r}")
    result = services.panel_snapshot_compute(clip_ids=clip_ids)
    services.job_mark_done(job_id=job_id, result=result)
    return result


@shared_task(base=RecordedTask, name="workers.tasks.recording_preprocess")
def recording_preprocess(*, recording_id: int) -> dict:
    """Detect, track and cut a recording's clips (idempotent: clips are replaced).

    Bad input ends in the recording's error state inside the service; only a bug
    raises, and RecordedTask.on_failure then marks the recording failed.
    """
    return recording_preprocess_run(recording_id=recording_id).as_dict()


@shared_task(base=RecordedTask, name="workers.tasks.recording_inspect")
def recording_inspect(*, recording_id: int) -> dict:
    """Store a recording's first frame and detections for choosing targets."""
    return recording_inspect_run(recording_id=recording_id).as_dict()


@shared_task(base=RecordedTask, name="workers.tasks.panel_statistics_refresh")
def panel_statistics_refresh(*, force: bool = False, claim: str = "") -> dict:
    """Recompute the dashboards' panel statistics if votes changed (periodic, or
    queued by a stale dashboard with its ``claim``): one at a time."""
    token = services.panel_statistics_claim_take(token=claim)
    if token is None:
        return {"skipped": "another refresh is queued or running"}
    try:
        statistics = services.panel_statistics_refresh(force=force)
    finally:
        services.panel_statistics_claim_release(token=token)
    return {"n_votes": statistics.n_votes, "seconds": statistics.seconds_to_compute}


# --- the model loop (orchestration in workers/training.py) ----------------------


@shared_task(base=RecordedTask, name="workers.tasks.training_run_start")
def training_run_start(*, run_id: int, attempt: int = 1) -> dict:
    """Snapshot the votes and queue the run's folds (idempotent)."""
    return training.training_run_start_run(run_id=run_id)


@shared_task(base=RecordedTask, bind=True, name="workers.tasks.training_fold")
def training_fold(self, *, run_id: int, index: int, attempt: int = 1) -> dict:
    """Train one fold; the last one to finish registers the version.

    A re-delivered message for a fold that is done, or running elsewhere, or of
    an older attempt, does nothing (``registry.services.fold_claim``).
    """
    host = self.request.hostname or "unknown"
    return training.training_fold_run(
        run_id=run_id, index=index, attempt=attempt, host=host
    )


@shared_task(base=RecordedTask, name="workers.tasks.training_run_register")
def training_run_register(*, run_id: int, attempt: int = 2) -> dict:
    """Register the version of a run whose every fold is done (sent again by the
    reaper when the worker registering it died; JOB_LOST_ACTION=requeue)."""
    return training.training_run_register_run(run_id=run_id)


@shared_task(base=RecordedTask, name="workers.tasks.version_predict")
def version_predict(*, version_id: int, clip_ids: list[int] | None = None) -> dict:
    """Predict the version's missing clips in batches (idempotent)."""
    return training.version_predict_run(version_id=version_id, clip_ids=clip_ids)


@shared_task(base=RecordedTask, name="workers.tasks.jobs_reap")
def jobs_reap_task() -> dict:
    """Periodic: fail (or re-queue once) every job whose worker stopped beating."""
    return {"reaped": jobs_reap()}


@shared_task(base=RecordedTask, name="workers.tasks.training_runs_reap")
def training_runs_reap() -> dict:
    """The older name of ``jobs_reap`` (a beat row made before it may still call it)."""
    return {"reaped": jobs_reap()}


@shared_task(base=RecordedTask, name="workers.tasks.retrain_when_due")
def retrain_when_due(
    *, trigger: str, profile: str = "clinic", min_new_clips: int = 0
) -> dict:
    """Periodic (django-celery-beat rows): start a run when one is due."""
    run = registry_services.retrain_if_due(
        trigger=trigger, profile=profile, min_new_clips=min_new_clips
    )
    return {"run": run.pk if run else None}


@shared_task(base=RecordedTask, name="workers.tasks.version_figures")
def version_figures(*, version_id: int) -> dict:
    """A new version's model-dashboard figures into the shared cache."""
    version = registry_selectors.version_get(version_id=version_id)
    if version is None:
        return {"version": version_id, "skipped": "unknown version"}
    cached = registry_selectors.version_panel_figures_warm(version=version)
    return {"version": version_id, "cached": cached}


@shared_task(base=RecordedTask, name="workers.tasks.predictions_catch_up")
def predictions_catch_up() -> dict:
    """Periodic: the active version predicts clips it has not seen."""
    return training.predictions_catch_up_run()


@shared_task(base=RecordedTask, name="workers.tasks.dataset_export")
def dataset_export(*, job_id: int) -> dict:
    """Write the export bundle for the job (same path: a re-run rewrites it)."""
    return dataset_export_run(job_id=job_id)


@shared_task(base=RecordedTask, name="workers.tasks.dataset_import")
def dataset_import(*, job_id: int) -> dict:
    """Import the job's uploaded bundle (a finished job is not imported again)."""
    return dataset_import_run(job_id=job_id)
