"""The model loop on CPU: snapshot, the job machinery's overhead against training
directly, prediction throughput, and "start" to "every clip predicted".

Embedded defaults (SQLite, the filesystem broker) in a throwaway folder, the demo's
synthetic data (60 clips, 40 simulated experts) and the clinic profile:

1. ``snapshot_s``: one snapshot of the panel's votes (manifest + hard links).
2. ``direct_train_s``: ``python -m modeling train`` on that snapshot's manifest
   with the run's resolved config, then ``... train --final`` (its ``main``,
   called in this process so interpreter start-up is not counted).
3. ``train_s``: the same training as a job: a real Celery worker process (solo
   pool, already started) runs the folds and the final model as separate tasks;
   from the run's start to its registration claim, broker hops included.
   ``job_overhead_percent`` = (train_s - direct_train_s) / direct_train_s.
   Steps 2 and 3 alternate ``--repeats`` times; the medians are reported.
4. ``start_to_predictions_s``: from queuing the run to every active clip having a
   prediction of its version (snapshot, folds, registration, ONNX, promotion,
   prediction of the ``--unvoted`` clips outside the snapshot). A version the
   rule holds for an admin is promoted at once, as if clicked.
5. ``predict_clips_per_s``: the version's final model over every active clip
   (``workers.training.version_predict_run``, batches of PREDICT_BATCH_CLIPS).

``--busy N`` keeps N other processes busy (each a Python loop on a core) from
before the worker starts to the end, as a lab machine that also does other work:
training beside them should slow down by their share of the cores, not wait on
itself (``workers/threads.py``).

Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/model_loop.py [--repeats 2] [--clips 60] [--busy 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _configure(tmp: Path) -> dict:
    env = {
        "DEBUG": "true",
        "SPERMGRADE_VAR_DIR": str(tmp),
        "MEDIA_ROOT": str(tmp / "media"),
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    return env


def _worker(env: dict, tmp: Path) -> subprocess.Popen:
    log = (tmp / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.celery", "worker",
         "-Q", "cpu,gpu", "--pool", "solo", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "info", "--hostname", "bench@%h"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "ready." in (tmp / "worker.log").read_text():
            return process
        time.sleep(0.5)
    raise RuntimeError("the Celery worker did not start; see worker.log")


def _wait(predicate, timeout_s: float = 1800.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError("the run did not finish in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--unvoted", type=int, default=10)
    parser.add_argument("--busy", type=int, default=0, help="busy processes beside")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="model-loop-"))
    env = _configure(tmp)
    from django.core.management import call_command
    from django.db import connection

    from annotation.demo import demo_data_load
    from annotation.models import Clip
    from config.celery import ensure_broker_folders
    from modeling import cli
    from modeling.config import config_dump
    from registry import selectors, services, storage
    from registry.models import Prediction, TrainingRun
    from registry.profiles import profile_get
    from workers.training import version_predict_run

    call_command("migrate", verbosity=0)
    demo_data_load(n_clips=args.clips)
    ensure_broker_folders()
    # Clips without votes (as from a new recording): outside every snapshot, so
    # the final model predicts them after the promotion.
    for clip in list(Clip.objects.order_by("pk")[: args.unvoted]):
        Clip.objects.create(
            patient=clip.patient,
            array_file=clip.array_file.name,
            n_frames=clip.n_frames,
            size_px=clip.size_px,
            speed=clip.speed,
            kinematics=clip.kinematics,
            is_synthetic=True,
        )

    start = time.perf_counter()
    snapshot = services.snapshot_create()
    snapshot_s = time.perf_counter() - start
    manifest = storage.absolute(snapshot.path)
    cfg = profile_get("clinic").config_resolve()
    config_dump(cfg, tmp / "clinic.yaml")

    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(args.busy)
    ]
    worker = _worker(env, tmp)
    direct, job, start_to_pred, versions = [], [], [], []
    try:
        for i in range(args.repeats):
            out = tmp / f"direct-{i}"
            start = time.perf_counter()
            base = [
                "train",
                "--config",
                str(tmp / "clinic.yaml"),
                "--data",
                str(manifest),
            ]
            assert cli.main([*base, "--out", str(out / "cv")]) == 0
            assert cli.main([*base, "--out", str(out / "final"), "--final"]) == 0
            direct.append(time.perf_counter() - start)

            start = time.perf_counter()
            run = services.training_run_create(profile="clinic")
            n_active = (
                Clip.objects.filter(is_active=True).exclude(array_file="").count()
            )

            def finished(run=run, n_active=n_active) -> bool:
                run.refresh_from_db()
                if run.status in ("failed", "cancelled"):
                    raise RuntimeError(
                        f"run {run.pk} {run.status}: {run.error_message}"
                    )
                if run.status != "done":
                    return False
                version = run.version
                if not version.is_active:  # held: the admin's click, at once
                    services.model_version_promote(version_id=version.pk, user=None)
                count = Prediction.objects.filter(version=version).count()
                return count >= n_active

            _wait(finished)
            start_to_pred.append(time.perf_counter() - start)
            run = TrainingRun.objects.get(pk=run.pk)
            job.append((run.registering_at - run.started_at).total_seconds())
            versions.append(run.version)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        for process in busy:
            process.kill()
            process.wait()

    version = versions[-1]
    with connection.cursor() as cursor:  # the benchmark's own rows, to time again
        cursor.execute(
            "DELETE FROM registry_prediction WHERE version_id = %s", [version.pk]
        )
    result = version_predict_run(version_id=version.pk)
    direct_s, train_s = statistics.median(direct), statistics.median(job)
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.python_version()}",
        "clips": snapshot.n_clips,
        "active_clips": Clip.objects.filter(is_active=True).count(),
        "votes": snapshot.n_votes,
        "profile": "clinic",
        "busy_processes": args.busy,
        "direct_train_s_each": [round(x, 2) for x in direct],
        "train_s_each": [round(x, 2) for x in job],
        "start_to_predictions_s_each": [round(x, 2) for x in start_to_pred],
        "direct_train_s": round(direct_s, 2),
        "emd_mean": round(version.emd_mean, 4),
        "emd_std": round(version.emd_std, 4),
        "mean_distribution_emd": round(version.baseline_emd, 4),
        "active_version": selectors.version_active().number,
        "snapshot_s": round(snapshot_s, 3),
        "train_s": round(train_s, 2),
        "job_overhead_percent": round(100 * (train_s - direct_s) / direct_s, 1),
        "predict_clips_per_s": result["clips_per_s"],
        "start_to_predictions_s": round(statistics.median(start_to_pred), 2),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
