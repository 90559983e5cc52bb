"""Fault injection: SIGKILL the worker doing each step of the loop, restart it as an
operator would, and see whether every job still ends (done, or failed with a
reason): never stuck, never half a version, never a lost task, schedules free.

Real processes: a throwaway PostgreSQL and Redis (``tests/servers``), one Celery
worker (prefork, one child, queues cpu and gpu, as the compose service runs it)
through the Redis broker; this script plays beat (``jobs_reap`` every 2 s, the
predictions catch-up every 15 s instead of 300 s). Settings for the run:
``JOB_HEARTBEAT_SECONDS=1``, ``JOB_HEARTBEAT_TIMEOUT_SECONDS=10``,
``JOB_LOST_ACTION=requeue`` and ``JOB_STAGE_PAUSE`` holding each short step for
about a second so a kill can land inside it (at a random moment of it).

Stages: snapshot, sending_folds (between marking the run running and sending its
folds), training, evaluating, saving (the checkpoint), claimed_registration,
registering, predicting, exporting, importing, preprocessing. Kills alternate
between the worker's child (the process in the job's heartbeat; the worker's main
process re-delivers the task) and the whole worker (its process group; restarted,
while Redis keeps the message unacknowledged until its visibility timeout, so the
reaper decides).

Per kill, seconds from the kill until the job is terminal: a run done, failed or
cancelled; an export or import job ended; a recording done or failed; every clip
of a prediction pass predicted. Targets: 0 stuck, 0 half versions, 0 lost, every
job terminal within the heartbeat timeout + 60 s, schedules never blocked.

    .venv/bin/python benchmarks/loop_faults.py [--kills-per-stage 3] [--seed 0]

Not a test; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TIMEOUT_S = 10
DEADLINE_S = 240.0
PAUSES = {
    "snapshot": 1.5,
    "sending_folds": 1.5,
    "training": 1.5,
    "evaluating": 1.5,
    "saving": 1.5,
    "claimed_registration": 1.5,
    "registering": 1.5,
    "predicting": 1.0,
    "exporting": 1.0,
    "importing": 1.0,
    "preprocessing": 1.0,
}
RUN_STAGES = (
    "snapshot",
    "sending_folds",
    "training",
    "evaluating",
    "saving",
    "claimed_registration",
    "registering",
)


def _environment(tmp: Path, database_url: str, redis_url: str) -> dict:
    return {
        "DEBUG": "true",
        "SPERMGRADE_VAR_DIR": str(tmp / "var"),
        "MEDIA_ROOT": str(tmp / "media"),
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "JOB_HEARTBEAT_SECONDS": "1",
        "JOB_HEARTBEAT_TIMEOUT_SECONDS": str(TIMEOUT_S),
        "JOB_LOST_ACTION": "requeue",
        "JOB_STAGE_PAUSE": ",".join(f"{k}={v}" for k, v in PAUSES.items()),
        "PREDICT_BATCH_CLIPS": "8",
        "OMP_NUM_THREADS": "1",
    }


class Worker:
    """One worker as the compose service runs it; restarted after a kill."""

    def __init__(self, env: dict, tmp: Path) -> None:
        self.env, self.tmp, self.process, self.starts = env, tmp, None, 0

    def start(self) -> None:
        from jobs.models import WorkerPresence

        self.starts += 1
        name = f"bench{self.starts}@faults"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config.celery",
                "worker",
                "-Q",
                "cpu,gpu",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--hostname",
                name,
                "--without-gossip",
                "--without-mingle",
                "-l",
                "warning",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=(self.tmp / f"worker{self.starts}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not WorkerPresence.objects.filter(name=name).exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"worker {name} did not start; see {self.tmp}")
            time.sleep(0.2)

    def kill_group(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class Beat:
    """What beat would run, at the benchmark's pace."""

    def __init__(self) -> None:
        self.last_reap = self.last_catch_up = 0.0

    def tick(self) -> None:
        from annotation.services.enqueue import PREDICTIONS_CATCH_UP
        from config.celery import app
        from jobs.reaper import jobs_reap

        now = time.monotonic()
        if now - self.last_reap >= 2:
            jobs_reap()
            self.last_reap = now
        if now - self.last_catch_up >= 15:
            app.send_task(PREDICTIONS_CATCH_UP)
            self.last_catch_up = now


def _wait(predicate, beat: Beat, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        beat.tick()
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _open_heartbeat(prefix: str, stage: str):
    from jobs.models import Heartbeat

    return (
        Heartbeat.objects.filter(
            subject__startswith=prefix,
            ended_at__isnull=True,
            reaped_at__isnull=True,
            stage__startswith=stage,
        )
        .order_by("-id")
        .first()
    )


def _new_clips(n: int, seed: int) -> list[int]:
    import numpy as np
    from django.core.files.base import ContentFile

    from tests.factories import ClipFactory, PatientFactory
    from tests.registry.conftest import _frames

    rng = np.random.default_rng(seed)
    patient = PatientFactory()
    ids = []
    for i in range(n):
        clip = ClipFactory(patient=patient, speed=30.0)
        clip.array_file.save(f"u{clip.pk}.npy", ContentFile(_frames(i % 5, rng)))
        ids.append(clip.pk)
    return ids


def _start(stage: str, index: int, bundle: Path, tmp: Path):
    """Start the job whose ``stage`` will be killed; returns (heartbeat prefix,
    terminal predicate, description of the job)."""
    from annotation.models import Job, Recording
    from exports import services as exports
    from registry import selectors, services
    from registry.models import FINISHED, Prediction, TrainingRun

    if stage in RUN_STAGES:
        run = services.training_run_create(profile="tiny", overrides={"epochs": 6})
        if stage in ("training", "evaluating", "saving"):
            prefix = f"fold:{run.pk}:"
        elif stage in ("claimed_registration", "registering"):
            prefix = f"register:{run.pk}"
        else:
            prefix = f"run:{run.pk}"

        def terminal() -> str | None:
            status = TrainingRun.objects.get(pk=run.pk).status
            return status if status in FINISHED else None

        return prefix, terminal, ("run", run.pk)
    if stage == "predicting":
        version = selectors.version_active()
        ids = _new_clips(24, seed=index)
        services.version_predict_request(version=version)

        def terminal() -> str | None:
            done = Prediction.objects.filter(version=version, clip_id__in=ids)
            return "done" if done.count() == len(ids) else None

        return f"predict:{version.pk}", terminal, ("predict", version.pk)
    if stage in ("exporting", "importing"):
        if stage == "exporting":
            job = exports.export_request(licence="benchmark")
        else:
            upload = tmp / f"upload-{index}.zip"
            shutil.copy(bundle, upload)
            job = exports.import_request(upload=upload, name="bench.zip")
        kind = "export" if stage == "exporting" else "import"

        def terminal() -> str | None:
            status = Job.objects.get(pk=job.pk).status
            return None if status in ("queued", "running") else status

        return f"{kind}:{job.pk}", terminal, ("job", job.pk)
    import numpy as np
    from django.core.files.base import ContentFile

    from annotation import services as annotation
    from tests.factories import PatientFactory
    from video.io import encode_mp4
    from video.synthetic import render_recording

    field = render_recording(
        n_sperm=12,
        n_frames=60,
        width=320,
        height=240,
        fps=15.0,
        rng=np.random.default_rng([100 + index, 4242]),
        n_debris=8,
    )
    recording = annotation.recording_create_from_upload(
        file=ContentFile(encode_mp4(field.frames(), fps=15.0), name="field.mp4"),
        patient=PatientFactory(),
        is_synthetic=True,
    )
    annotation.recording_enqueue(recording=recording)

    def terminal() -> str | None:
        status = Recording.objects.get(pk=recording.pk).status
        return status if status in ("done", "failed") else None

    return f"recording:{recording.pk}", terminal, ("recording", recording.pk)


def _reason_missing(job: tuple[str, int]) -> bool:
    """A job that failed without saying why (a lost task in disguise)."""
    from annotation.models import Job, Recording
    from registry.models import TrainingRun

    kind, pk = job
    row = {
        "run": TrainingRun,
        "job": Job,
        "recording": Recording,
    }.get(kind)
    if row is None:
        return False
    obj = row.objects.get(pk=pk)
    return obj.status == "failed" and not obj.error_message.strip()


def _why(job: tuple[str, int]) -> str:
    from annotation.models import Job, Recording
    from registry.models import TrainingRun

    kind, pk = job
    model = {"run": TrainingRun, "job": Job, "recording": Recording}.get(kind)
    return model.objects.get(pk=pk).error_message[:160] if model else ""


def _half_versions() -> int:
    from registry import storage
    from registry.models import ModelVersion

    registered = {v.artifact_path for v in ModelVersion.objects.all()}
    models = storage.registry_dir("models")
    orphans = [
        p
        for p in (models.iterdir() if models.is_dir() else [])
        if storage.relative(p) not in registered
    ]
    broken = [
        v
        for v in ModelVersion.objects.all()
        if not (storage.absolute(v.artifact_path) / "version.json").is_file()
        or not (storage.absolute(v.artifact_path) / "final").is_dir()
    ]
    return len(orphans) + len(broken)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills-per-stage", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default=",".join(PAUSES))
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from tests.servers.processes import start_postgres, start_redis

    tmp = Path(tempfile.mkdtemp(prefix="spermgrade-faults-"))
    postgres, redis = start_postgres(), start_redis()
    env = _environment(tmp, postgres.url, redis.url)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from exports.bundle import bundle_write
    from registry import selectors
    from tests.registry.conftest import make_voted_clips

    call_command("migrate", verbosity=0)
    make_voted_clips(n_clips=24, n_patients=8, n_experts=6)
    bundle = tmp / "bundle.zip"
    bundle_write(bundle)
    worker = Worker(env, tmp)
    beat = Beat()
    results: dict[str, list[float | None]] = {}
    stuck = lost = kills = blocked = 0
    try:
        worker.start()
        # A first version, so prediction passes have an active version.
        from registry import services

        first = services.training_run_create(profile="tiny")
        _wait(lambda: selectors.version_active() is not None, beat, 300)
        first.refresh_from_db()
        for stage in args.stages.split(","):
            for index in range(args.kills_per_stage):
                mode = "child" if (index + len(stage)) % 2 == 0 else "worker"
                prefix, terminal, job = _start(stage, index + 10 * kills, bundle, tmp)
                row, killed_at = None, time.monotonic()
                found = _wait(
                    lambda prefix=prefix, stage=stage: _open_heartbeat(prefix, stage),
                    beat,
                    180,
                )
                if found:
                    row = _open_heartbeat(prefix, stage)
                    time.sleep(rng.uniform(0.0, PAUSES[stage] * 0.8))
                    killed_at = time.monotonic()  # the restart below counts
                    if mode == "child":
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(row.pid, signal.SIGKILL)
                    else:
                        worker.kill_group()
                        worker.start()
                    kills += 1
                ended = _wait(lambda t=terminal: t() is not None, beat, DEADLINE_S)
                seconds = round(time.monotonic() - killed_at, 1) if ended else None
                results.setdefault(stage, []).append(seconds)
                outcome = terminal() if ended else "stuck"
                if not ended:
                    stuck += 1
                    if worker.process.poll() is not None:
                        worker.start()
                if ended and _reason_missing(job):
                    lost += 1
                if selectors.runs_active().exists() and not _wait(
                    lambda: not selectors.runs_active().exists(), beat, 60
                ):
                    blocked += 1
                print(
                    f"{stage:22s} kill {index + 1} ({mode:6s}, "
                    f"{'at ' + row.stage if row else 'stage not reached'}): "
                    f"{outcome} after {seconds} s"
                    + (f" ({_why(job)})" if outcome == "failed" else ""),
                    flush=True,
                )
        half = _half_versions()
    finally:
        worker.stop()
        redis.stop()
        postgres.stop()
    timed = [s for values in results.values() for s in values if s is not None]
    summary = {
        "kills": kills,
        "stuck_jobs": stuck,
        "half_versions": half,
        "lost_tasks": lost,
        "max_seconds_to_terminal": max(timed) if timed else None,
        "schedules_blocked": blocked,
        "heartbeat_timeout_s": TIMEOUT_S,
        "target_seconds_to_terminal": TIMEOUT_S + 60,
        "seconds_to_terminal_by_stage": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print(json.dumps(summary))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if not (stuck or half or lost or blocked) else 1


if __name__ == "__main__":
    raise SystemExit(main())
