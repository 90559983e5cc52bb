"""The model loop on real Celery worker processes through a real Redis.

Each test starts ``celery -A config.celery worker`` processes on the ``cpu`` queue
against the throwaway Redis and the test database (committed data: transactional
tests), then drives the loop as the web side does: by sending task names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from annotation.services import enqueue
from jobs.models import Heartbeat
from jobs.reaper import jobs_reap
from registry import selectors, services, storage
from registry.models import ModelVersion, Prediction, RunStatus, TrainingRun
from tests.annotation.conftest import session_client
from tests.conftest import REPO_ROOT
from tests.factories import ExpertFactory, handle, offer

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class Workers:
    def __init__(self, redis_url: str, media: Path, tmp: Path):
        self.redis_url, self.media, self.tmp = redis_url, media, tmp
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, *, pool: str = "solo") -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": self.redis_url,
            "CELERY_RESULT_BACKEND": self.redis_url,
            "SPERMGRADE_VAR_DIR": str(self.tmp / name),
            "MEDIA_ROOT": str(self.media),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "OMP_NUM_THREADS": "1",
        }
        log_path = self.tmp / f"{name}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config.celery",
                "worker",
                "-Q",
                "cpu",
                "--pool",
                pool,
                "--concurrency",
                "1",
                "--hostname",
                f"{name}@test",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((process, log_path))
        return process

    def stop(self) -> None:
        for process, log_path in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            print(log_path.read_text()[-2500:])  # shown when a test fails


@pytest.fixture
def workers(redis_server, tmp_path, settings, monkeypatch):
    producer = Celery(
        "test-producer", broker=redis_server.url, backend=redis_server.url
    )
    producer.conf.task_routes = settings.CELERY_TASK_ROUTES
    monkeypatch.setattr(enqueue, "current_app", producer)
    pool = Workers(redis_server.url, Path(settings.MEDIA_ROOT), tmp_path)
    yield pool
    pool.stop()
    producer.close()


def _wait_for(predicate, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def _status(run: TrainingRun) -> str:
    return TrainingRun.objects.get(pk=run.pk).status


def _nothing_left(run: TrainingRun) -> None:
    assert not ModelVersion.objects.filter(run=run).exists()
    assert not storage.registry_dir("runs", str(run.pk)).exists()
    assert not storage.registry_dir("models", f"run-{run.pk}").exists()
    tmp = storage.registry_dir("tmp")
    assert not tmp.exists() or not any(tmp.iterdir())


def _training(run: TrainingRun) -> bool:
    return run.folds.filter(
        status=RunStatus.RUNNING, progress__has_key="epoch"
    ).exists()


def test_a_tiny_run_goes_snapshot_train_register_promote_predict(voted, workers):
    clips, _ = voted
    workers.start("w1")
    run = services.training_run_create(profile="tiny")
    assert _wait_for(lambda: _status(run) in ("done", "failed"), 240), run.log_tail
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error_message
    version = ModelVersion.objects.get(run=run)
    assert version.is_active
    assert _wait_for(
        lambda: Prediction.objects.filter(version=version).count() == len(clips), 60
    )
    assert {f.worker_host for f in run.folds.all()} == {"w1@test"}
    assert run.timings["snapshot_s"] >= 0 and run.timings["train_s"] > 0


def test_three_folds_run_in_parallel_on_two_workers(voted, workers):
    workers.start("w1")
    workers.start("w2")
    run = services.training_run_create(profile="tiny", overrides={"k": 3, "epochs": 40})
    assert _wait_for(lambda: _status(run) in ("done", "failed"), 300), run.log_tail
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error_message
    folds = list(run.folds.all())
    assert sorted(f.index for f in folds) == [-1, 0, 1, 2]
    assert {f.worker_host for f in folds} == {"w1@test", "w2@test"}
    assert ModelVersion.objects.filter(run=run).count() == 1
    assert len(ModelVersion.objects.get(run=run).metrics["folds"]) == 3


def test_cancel_stops_a_running_fold_and_says_cancelled(voted, workers):
    workers.start("w1")
    run = services.training_run_create(profile="tiny", overrides={"epochs": 5000})
    assert _wait_for(lambda: _training(run), 120), TrainingRun.objects.get(pk=run.pk)
    services.training_run_cancel(run_id=run.pk)
    assert _wait_for(lambda: _status(run) == "cancelled", 30)
    run.refresh_from_db()
    assert "cancel" in run.log_tail
    epochs = [f.progress.get("epoch", 0) for f in run.folds.all()]
    assert max(epochs) < 5000
    _nothing_left(run)


def test_a_worker_killed_mid_training_fails_the_run_and_leaves_nothing(voted, workers):
    process = workers.start("w1")
    run = services.training_run_create(profile="tiny", overrides={"epochs": 5000})
    assert _wait_for(lambda: _training(run), 120)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    time.sleep(2.5)
    reaped = jobs_reap(timeout_s=2)
    assert [r["outcome"] for r in reaped] == ["the run failed"]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "stopped reporting" in run.error_message and "w1@test" in run.error_message
    assert "No model version was registered" in run.error_message
    _nothing_left(run)


def _children(process: subprocess.Popen) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout
    return [int(pid) for pid in out.split()]


def test_a_worker_child_killed_mid_fold_trains_it_again_as_a_new_attempt(
    voted, workers
):
    """SIGKILL of the child training a fold: the worker's main process re-queues
    the message (acks_late, reject on worker loss), the next delivery sees the
    dead child's heartbeat, takes the fold over as attempt 2 in a folder of its
    own, and the run ends done with one version."""
    process = workers.start("w1", pool="prefork")
    run = services.training_run_create(profile="tiny", overrides={"epochs": 60})
    assert _wait_for(lambda: _training(run), 120), run.log_tail
    fold = run.folds.get(status=RunStatus.RUNNING)
    child = Heartbeat.objects.get(
        subject=f"fold:{run.pk}:{fold.index}", ended_at__isnull=True
    ).pid
    assert child in _children(process)
    os.kill(child, signal.SIGKILL)
    assert _wait_for(lambda: _status(run) in ("done", "failed"), 300), run.log_tail
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error_message
    fold.refresh_from_db()
    assert fold.attempt == 2 and fold.status == RunStatus.DONE
    killed = Heartbeat.objects.get(subject=f"fold:{run.pk}:{fold.index}", pid=child)
    assert killed.ended_at is None and killed.outcome == "delivered again"
    assert ModelVersion.objects.filter(run=run).count() == 1
    assert process.poll() is None  # the worker itself kept serving


def test_a_worker_whose_idle_child_is_killed_keeps_serving_and_stops_on_term(
    voted, workers
):
    process = workers.start("w1", pool="prefork")
    assert _wait_for(lambda: len(_children(process)) == 1, 120)
    (idle,) = _children(process)
    os.kill(idle, signal.SIGKILL)
    assert _wait_for(lambda: _children(process) not in ([], [idle]), 90)
    run = services.training_run_create(profile="tiny")
    assert _wait_for(lambda: _status(run) in ("done", "failed"), 240), run.log_tail
    assert _status(run) == RunStatus.DONE
    process.terminate()
    process.wait(timeout=90)  # TERM: a warm shutdown, not ignored


def test_a_trainer_error_on_the_worker_fails_the_run_with_the_reason(voted, workers):
    workers.start("w1")
    # A model name the registry does not know: the trainer raises on the worker.
    run = services.training_run_create(profile="tiny")
    TrainingRun.objects.filter(pk=run.pk).update(
        config={**run.config, "model": {"name": "no-such-model", "kwargs": {}}}
    )
    assert _wait_for(lambda: _status(run) in ("done", "failed"), 120)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "no-such-model" in run.error_message
    _nothing_left(run)


def test_a_broker_that_is_down_keeps_grading_working_and_says_so(
    voted, monkeypatch, settings
):
    clips, _ = voted
    from tests.servers.processes import free_port

    down = Celery("down", broker=f"redis://127.0.0.1:{free_port()}/0")
    down.conf.broker_connection_retry = False
    down.conf.broker_connection_max_retries = 0
    down.conf.task_publish_retry = False
    monkeypatch.setattr(enqueue, "current_app", down)
    run = services.training_run_create(profile="tiny")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "task queue is unreachable" in run.error_message
    expert = ExpertFactory()
    client = session_client(expert)
    offer(expert, [clips[0]])
    vote = client.post(
        "/api/votes/", {"clip": handle(expert, clips[0]), "grade": "B"}, format="json"
    )
    assert vote.status_code == 201, vote.content
    assert selectors.run_get(run_id=run.pk).status == "failed"
