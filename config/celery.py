"""The Celery app. Every option is a ``CELERY_*`` setting in ``config/settings.py``.

The web apps never import task code: they send tasks by name through
``annotation.services.enqueue`` and Celery routes them to the queue the settings
name. Workers load ``workers.tasks`` (``-A config.celery``).
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# OpenMP threads that wait sleep instead of spinning (read when PyTorch loads, which
# is after this in a worker): a core shared with other work is not burnt waiting.
# workers/threads.py sets how many threads each task gets.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = Celery("spermgrade")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


def ensure_broker_folders() -> None:
    """The filesystem transport needs its folders before anything is sent."""
    options = app.conf.broker_transport_options or {}
    for key in (
        "data_folder_in",
        "data_folder_out",
        "processed_folder",
        "control_folder",
    ):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
    backend = str(app.conf.result_backend or "")
    if backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


@worker_init.connect
def _prepare_folders(**_: object) -> None:
    ensure_broker_folders()
