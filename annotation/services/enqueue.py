"""Sending background work: by task name, once the transaction commits.

The web side never imports task code (``workers`` imports this app, not the other
way round). A task is named here and routed to its queue by ``CELERY_TASK_ROUTES``;
its time limits come from the same settings. A broker that is down must neither
turn the request into a server error nor leave work "queued" for ever: the caller's
``on_unreachable`` records the failure where the user will see it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

PANEL_SNAPSHOT = "workers.tasks.panel_snapshot"
RECORDING_PREPROCESS = "workers.tasks.recording_preprocess"
RECORDING_INSPECT = "workers.tasks.recording_inspect"
PANEL_STATISTICS_REFRESH = "workers.tasks.panel_statistics_refresh"
# The model loop's tasks (sent by registry.services).
TRAINING_RUN_START = "workers.tasks.training_run_start"
TRAINING_FOLD = "workers.tasks.training_fold"
TRAINING_REGISTER = "workers.tasks.training_run_register"
VERSION_PREDICT = "workers.tasks.version_predict"
VERSION_FIGURES = "workers.tasks.version_figures"
TRAINING_RUNS_REAP = "workers.tasks.training_runs_reap"  # the older name
JOBS_REAP = "workers.tasks.jobs_reap"
RETRAIN_WHEN_DUE = "workers.tasks.retrain_when_due"
PREDICTIONS_CATCH_UP = "workers.tasks.predictions_catch_up"
DATASET_EXPORT = "workers.tasks.dataset_export"
DATASET_IMPORT = "workers.tasks.dataset_import"
TASK_NAMES = (
    PANEL_SNAPSHOT,
    RECORDING_PREPROCESS,
    RECORDING_INSPECT,
    PANEL_STATISTICS_REFRESH,
    TRAINING_RUN_START,
    TRAINING_FOLD,
    TRAINING_REGISTER,
    VERSION_PREDICT,
    VERSION_FIGURES,
    TRAINING_RUNS_REAP,
    JOBS_REAP,
    RETRAIN_WHEN_DUE,
    PREDICTIONS_CATCH_UP,
    DATASET_EXPORT,
    DATASET_IMPORT,
)

UNREACHABLE = (
    "the task queue is unreachable ({error}). Check that the Celery broker and "
    "worker run, then try again."
)


def task_send(
    *,
    name: str,
    kwargs: dict,
    on_unreachable: Callable[[str], None] | None = None,
    queue: str | None = None,
) -> None:
    """Send task ``name`` with ``kwargs`` (ids and small JSON) after the commit.

    ``queue`` overrides the task's route (a CPU profile's training on ``cpu``);
    ``on_unreachable(message)`` runs when the broker refuses the message.
    """
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}")

    def send() -> None:
        try:
            if current_app.conf.task_always_eager:
                # Debugging and tests (CELERY_TASK_ALWAYS_EAGER): run it right here,
                # by name, as a worker would (which loads the task modules first).
                current_app.loader.import_default_modules()
                current_app.tasks[name].apply(kwargs=kwargs)
            else:
                options = {"queue": queue} if queue else {}
                current_app.send_task(name, kwargs=kwargs, **options)
        except Exception as exc:
            logger.exception("could not queue %s with %s", name, kwargs)
            if on_unreachable is not None:
                on_unreachable(UNREACHABLE.format(error=type(exc).__name__))

    transaction.on_commit(send)
