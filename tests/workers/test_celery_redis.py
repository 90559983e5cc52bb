"""A real Celery task through a real Redis to a real worker process.

The worker runs ``celery -A config.celery worker`` against the throwaway Redis and
the test database (committed data: transactional test), the task writes its result
into the Job row, and a failing task is marked failed by the base task.
"""

import os
import subprocess
import sys
import time

import pytest
from celery import Celery
from django.db import connection

from annotation import services
from annotation.models import Job
from tests.conftest import REPO_ROOT
from tests.factories import ClipFactory, VoteFactory


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def worker(redis_server, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_RESULT_BACKEND": redis_server.url,
        "SPERMGRADE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    with open(tmp_path / "worker.log", "w+") as log:
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
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        yield process
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.seek(0)
        print(log.read()[-3000:])  # shown when the test fails


def _wait_for(predicate, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_panel_snapshot_runs_on_a_real_worker_through_redis(redis_server, worker):
    clip = ClipFactory()
    for grade in "AAC":
        VoteFactory(clip=clip, grade=grade)
    ok = services.job_create(kind="panel_snapshot")
    bad = services.job_create(kind="panel_snapshot")
    producer = Celery(
        "test-producer", broker=redis_server.url, backend=redis_server.url
    )
    try:
        result = producer.send_task(
            "workers.tasks.panel_snapshot", kwargs={"job_id": ok.pk}, queue="cpu"
        )
        summary = result.get(timeout=90)
        failing = producer.send_task(
            "workers.tasks.panel_snapshot",
            kwargs={"job_id": bad.pk, "clip_ids": ["not-an-id"]},
            queue="cpu",
        )
        with pytest.raises(Exception, match="clip_ids"):
            failing.get(timeout=60)
    finally:
        producer.close()

    assert summary["n_votes"] == 3 and summary["grade_totals"] == [2, 0, 1, 0, 0]
    ok.refresh_from_db()
    assert ok.status == Job.Status.DONE and ok.result == summary
    assert ok.celery_task_id == result.id
    assert _wait_for(lambda: Job.objects.get(pk=bad.pk).status == Job.Status.FAILED, 30)
    assert "clip_ids" in Job.objects.get(pk=bad.pk).error_message


@pytest.fixture
def eager_celery():
    from config.celery import app, ensure_broker_folders

    ensure_broker_folders()
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.mark.django_db
def test_snapshot_request_enqueues_after_commit_and_records_the_result(
    eager_celery, django_capture_on_commit_callbacks
):
    VoteFactory(grade="E")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = services.panel_snapshot_request()
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert job.result["grade_totals"] == [0, 0, 0, 0, 1]


@pytest.mark.django_db
def test_base_task_marks_the_job_failed_with_the_error(eager_celery):
    from workers.tasks import panel_snapshot

    job = services.job_create(kind="panel_snapshot")
    outcome = panel_snapshot.apply(kwargs={"job_id": job.pk, "clip_ids": ["x"]})
    assert outcome.failed()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error_message.startswith("ValueError: clip_ids")
