"""One liveness mechanism: heartbeats written by a thread while a task runs, and
one reaper that ends (or re-queues once) every kind of job whose worker died —
exports, imports, recordings, previews, a run's start, folds, registration."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from annotation.models import Job, Recording
from annotation.services import enqueue
from exports.services import export_path_for, import_path_for
from jobs import liveness, selectors
from jobs.models import Heartbeat
from jobs.reaper import delivery_admit, jobs_reap
from registry import storage
from registry.models import ModelVersion, RunStatus, TrainingFold, TrainingRun
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Tasks sent to the broker, as (name, kwargs, queue), sent at once (the test's
    transaction never commits)."""
    calls = []
    fake = SimpleNamespace(
        conf=SimpleNamespace(task_always_eager=False),
        send_task=lambda name, kwargs, **o: calls.append(
            (name, kwargs, o.get("queue"))
        ),
    )
    monkeypatch.setattr(enqueue, "current_app", fake)
    monkeypatch.setattr(enqueue.transaction, "on_commit", lambda send, **_: send())
    return calls


def beat(subject: str, *, attempt: int = 1, age_s: float = 0.0, **fields):
    at = timezone.now() - timedelta(seconds=age_s)
    defaults = {"host": "another-machine", "pid": 1, "worker": "w1@lab"}
    return Heartbeat.objects.create(
        subject=subject,
        attempt=attempt,
        started_at=at,
        beat_at=at,
        **{**defaults, **fields},
    )


DEAD = 10_000  # seconds: far past any heartbeat timeout


def test_a_dead_export_fails_with_a_sentence_and_leaves_no_partial_file(settings):
    job = Job.objects.create(kind="export", status=Job.Status.RUNNING)
    partial = export_path_for(job).with_suffix(".zip.partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half a zip")
    beat(f"export:{job.pk}", age_s=DEAD)
    beat("export:999999", age_s=1)  # alive: untouched
    done = jobs_reap()
    assert [d["subject"] for d in done] == [f"export:{job.pk}"]
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "writing this export (w1@lab, process 1) stopped reporting" in (
        job.error_message
    )
    assert "killed, ran out of memory or lost its machine" in job.error_message
    assert not partial.exists()
    assert jobs_reap() == []  # a row is handled once


def test_a_dead_import_fails_and_its_upload_goes():
    job = Job.objects.create(kind="import", status=Job.Status.RUNNING)
    upload = import_path_for(job)
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(b"zip")
    beat(f"import:{job.pk}", age_s=DEAD)
    jobs_reap()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "importing this bundle" in (
        job.error_message
    )
    assert not upload.exists()


def test_a_dead_preprocessing_fails_the_recording_and_it_may_run_again(sent):
    recording = Recording.objects.create(
        patient=PatientFactory(), status=Recording.Status.PROCESSING
    )
    row = beat(f"recording:{recording.pk}", age_s=DEAD)
    jobs_reap()
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert "preprocessing this recording" in recording.error_message
    row.refresh_from_db()
    assert row.reaped_at is not None and row.outcome == (
        f"recording {recording.pk} failed"
    )


def test_a_lost_preview_is_asked_for_again_once_then_the_recording_fails(sent):
    recording = Recording.objects.create(patient=PatientFactory())
    beat(f"preview:{recording.pk}", age_s=DEAD)
    jobs_reap()
    assert [name for name, *_ in sent] == [enqueue.RECORDING_INSPECT]
    beat(f"preview:{recording.pk}", age_s=DEAD)
    jobs_reap()
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert len(sent) == 1


def test_a_process_known_dead_on_this_machine_is_reaped_without_the_timeout(
    settings,
):
    job = Job.objects.create(kind="export", status=Job.Status.RUNNING)
    child = subprocess.Popen(["true"])
    child.wait()  # its pid is now free: the process is gone
    row = beat(f"export:{job.pk}", host=liveness.host_name(), pid=child.pid)
    assert selectors.pid_dead_here(host=liveness.host_name(), pid=child.pid)
    assert not selectors.pid_dead_here(host=liveness.host_name(), pid=os.getpid())
    assert not selectors.pid_dead_here(host="elsewhere", pid=child.pid)
    # Just died: its worker gets a few beats to deliver the task again first.
    assert jobs_reap() == []
    grace = 3 * settings.JOB_HEARTBEAT_SECONDS + settings.CELERY_WORKER_LOST_WAIT + 3
    assert grace < settings.JOB_HEARTBEAT_TIMEOUT_SECONDS
    Heartbeat.objects.filter(pk=row.pk).update(
        beat_at=timezone.now() - timedelta(seconds=grace)
    )
    jobs_reap()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED


def test_a_new_delivery_supersedes_dead_workers_and_gives_up_after_the_limit():
    subject = "export:77"
    beat(subject, age_s=1)  # alive elsewhere: a duplicate delivery is refused
    assert delivery_admit(subject, max_deaths=3) == "a live worker is on it"
    Heartbeat.objects.update(beat_at=timezone.now() - timedelta(seconds=DEAD))
    assert delivery_admit(subject, max_deaths=3) is None
    assert Heartbeat.objects.get().outcome == "delivered again"
    assert jobs_reap() == []  # the reaper leaves the job to the new delivery
    beat(subject, age_s=DEAD)
    assert delivery_admit(subject, max_deaths=3) is None
    job = Job.objects.create(pk=77, kind="export", status=Job.Status.RUNNING)
    beat(subject, age_s=DEAD)
    refused = delivery_admit(subject, max_deaths=3)
    assert refused == "its workers died 3 times; given up"
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_beats_while_the_task_runs_and_closes_the_row(
    settings,
):
    settings.JOB_HEARTBEAT_SECONDS = 1
    stop = []
    with liveness.alive("export:5", task="t", stop_check=lambda: bool(stop)) as p:
        first = Heartbeat.objects.get(pk=p.row_id).beat_at
        assert liveness.current() is p
        time.sleep(2.5)  # a task busy without any progress report
        assert Heartbeat.objects.get(pk=p.row_id).beat_at > first
        assert selectors.subject_alive(subject="export:5")
        stop.append(True)
        deadline = time.monotonic() + 5
        while not p.stop_requested.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert p.stop_requested.is_set()
    row = Heartbeat.objects.get(pk=p.row_id)
    assert row.ended_at is not None and liveness.current() is None
    assert not selectors.subject_alive(subject="export:5")
    with pytest.raises(RuntimeError), liveness.alive("export:6") as failing:
        raise RuntimeError("the task's own error")
    assert Heartbeat.objects.get(pk=failing.row_id).ended_at is not None


# --- the model loop ---------------------------------------------------------------


def _run(status=RunStatus.RUNNING, folds=(0, 1, -1), **fields) -> TrainingRun:
    run = TrainingRun.objects.create(
        profile="tiny", queue="cpu", status=status, **fields
    )
    for index in folds:
        TrainingFold.objects.create(run=run, index=index)
    return run


def test_a_lost_fold_fails_its_run_and_the_other_folds_stop(sent):
    run = _run()
    TrainingFold.objects.filter(run=run).update(status=RunStatus.RUNNING)
    beat(f"fold:{run.pk}:0", age_s=DEAD)
    beat(f"fold:{run.pk}:1", age_s=1)  # alive, training on
    jobs_reap()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "training fold 0 (w1@lab, process 1) stopped reporting" in (
        run.error_message
    )
    assert "No model version was registered." in run.error_message
    statuses = dict(run.folds.values_list("index", "status"))
    assert statuses == {0: "failed", 1: "cancelled", -1: "cancelled"}
    # What the live fold's heartbeat thread asks next: stop.
    from registry.services import fold_should_stop

    assert fold_should_stop(run_id=run.pk, index=1, attempt=1)


def test_with_requeue_a_lost_fold_is_queued_again_once(sent, settings):
    settings.JOB_LOST_ACTION = "requeue"
    run = _run()
    TrainingFold.objects.filter(run=run, index=0).update(status=RunStatus.RUNNING)
    beat(f"fold:{run.pk}:0", age_s=DEAD)
    jobs_reap()
    fold = TrainingFold.objects.get(run=run, index=0)
    assert (fold.status, fold.attempt) == (RunStatus.QUEUED, 2)
    assert (enqueue.TRAINING_FOLD, {"run_id": run.pk, "index": 0, "attempt": 2}) in [
        (name, kwargs) for name, kwargs, _ in sent
    ]
    TrainingFold.objects.filter(pk=fold.pk).update(status=RunStatus.RUNNING)
    beat(f"fold:{run.pk}:0", attempt=2, age_s=DEAD)
    jobs_reap()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED  # the second loss is not re-queued


def test_a_start_that_died_after_marking_running_sends_its_folds_again(sent):
    run = _run()
    beat(f"run:{run.pk}", age_s=DEAD)
    jobs_reap()
    assert sorted(
        k["index"] for name, k, _ in sent if name == enqueue.TRAINING_FOLD
    ) == [
        -1,
        0,
        1,
    ]
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and "Sent its 3 waiting tasks" in (
        run.log_tail
    )


def test_a_start_that_died_before_marking_running_fails_or_is_queued_again(
    sent, settings
):
    failed = _run(status=RunStatus.QUEUED, folds=())
    beat(f"run:{failed.pk}", age_s=DEAD)
    jobs_reap()
    failed.refresh_from_db()
    assert failed.status == RunStatus.FAILED and "starting this run" in (
        failed.error_message
    )
    settings.JOB_LOST_ACTION = "requeue"
    again = _run(status=RunStatus.QUEUED, folds=())
    beat(f"run:{again.pk}", age_s=DEAD)
    jobs_reap()
    assert (enqueue.TRAINING_RUN_START, {"run_id": again.pk, "attempt": 2}) in [
        (name, kwargs) for name, kwargs, _ in sent
    ]


def test_a_registration_that_died_leaves_no_half_version(sent):
    run = _run(registering_at=timezone.now())
    run.folds.update(status=RunStatus.DONE)
    half = storage.registry_dir("models", f"run-{run.pk}-r1")
    half.mkdir(parents=True)
    (half / "version.json").write_text("{}")
    beat(f"register:{run.pk}", age_s=DEAD)
    jobs_reap()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "registering this run's version" in run.error_message
    assert not half.exists()
    assert not ModelVersion.objects.filter(run=run).exists()


def test_with_requeue_a_lost_registration_is_claimed_again(sent, settings):
    settings.JOB_LOST_ACTION = "requeue"
    run = _run(registering_at=timezone.now())
    run.folds.update(status=RunStatus.DONE)
    beat(f"register:{run.pk}", age_s=DEAD)
    jobs_reap()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.registering_at is None
    assert (enqueue.TRAINING_REGISTER, {"run_id": run.pk, "attempt": 2}, "cpu") in sent


def test_a_task_says_its_step_and_only_the_benchmark_setting_holds_it(settings):
    from jobs.liveness import _pauses, stage

    assert _pauses() == {}  # "off" by default: production never waits
    settings.JOB_STAGE_PAUSE = "saving=1.5, snapshot=0.25,bad"
    assert _pauses() == {"saving": 1.5, "snapshot": 0.25}
    settings.JOB_STAGE_PAUSE = "off"
    stage("outside any task")  # no heartbeat: nothing to say, no error
    with liveness.alive("export:9") as pulse:
        stage("exporting", "clips")
        assert Heartbeat.objects.get(pk=pulse.row_id).stage == "exporting: clips"
