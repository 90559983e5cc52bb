"""Registry and dashboard pages at lab scale: time and SQL queries per request.

Starts a throwaway PostgreSQL and bulk-loads a lab's worth of data (COPY and
large bulk inserts): 100,000 clips of 2,000 patients, 40 experts × every clip
(4,000,000 votes), the cached panel statistics, 100 snapshots (each with its clip
ids), 1,000 finished training runs (5 folds and a final model each) and their
1,000 model versions, and 20 versions with a prediction for every clip
(2,000,000 predictions) whose out-of-fold files and snapshot manifests are on
disk. Then every registry and dashboard page and every registry API list is
requested 20 times in-process (Django's test client, DEBUG off, local-memory
cache): median and p95 milliseconds, and the most SQL queries of one request.

Targets (issue 26): p95 ≤ 300 ms and ≤ 25 queries per page. A page whose first
request fills a cache (the paired comparisons, the model-vs-panel report, the
clips to review) is also reported cold, apart (``cold_ms``): the 20 timed
requests follow that first one (3 when one takes over 10 s).
``dash_model_after_statistics`` is the model dashboard again after the panel
statistics were recomputed (as they are whenever votes change). Not a test;
the last line is one JSON object.

    .venv/bin/python benchmarks/registry_scale.py [--scale 0.1] [--repeats 20]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRADES = "ABCDE"
STAMP = "2026-01-01 00:00:00+00"
# A request slower than this is repeated only SLOW_REPEATS times (the code
# before the fixes has pages of minutes).
SLOW_S = 10.0
SLOW_REPEATS = 3


def _web_load():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "web_load", ROOT / "benchmarks/web_load.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sized(args) -> dict:
    s = args.scale
    return {
        "clips": max(200, int(100_000 * s)),
        "patients": max(10, int(2_000 * s)),
        "experts": args.experts,
        "snapshots": max(4, int(100 * s)),
        "runs": max(40, int(1_000 * s)),
        "predicted_versions": 20,
    }


# --- loading -------------------------------------------------------------------------


def _copy(sql: str, lines, *, replica: bool = True) -> None:
    """COPY rows (tab-separated text, an iterable of str chunks) into a table."""
    from django.db import connection, transaction

    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor() as pg:
            if replica:  # no FK or count triggers during the copy
                pg.execute("SET LOCAL session_replication_role = replica")
            with pg.copy(sql) as copy:
                for chunk in lines:
                    copy.write(chunk)


def load_clips_and_votes(size: dict, experts: list) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, patient index of each clip): clips by bulk insert, votes by
    COPY (counts then rebuilt once, as the triggers would have)."""
    from annotation import services
    from annotation.models import Clip, Patient

    began = time.monotonic()
    patients = Patient.objects.bulk_create(
        [
            Patient(code=f"BENCH-P-{i:05d}", is_synthetic=True)
            for i in range(size["patients"])
        ],
        batch_size=5000,
    )
    n = size["clips"]
    patient_of = np.arange(n) % len(patients)
    clips = Clip.objects.bulk_create(
        [
            Clip(
                patient=patients[patient_of[i]],
                n_frames=16,
                fps=15.0,
                is_synthetic=True,
                array_file=f"clips/bench-{i}.npy",
            )
            for i in range(n)
        ],
        batch_size=5000,
    )
    clip_ids = np.array([c.pk for c in clips], dtype=np.int64)
    print(f"  {n:,} clips in {time.monotonic() - began:.1f} s")

    began = time.monotonic()
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, size=n)
    clip_text = [str(int(c)) for c in clip_ids]

    def chunks():
        for expert in experts:
            noise = rng.integers(-1, 2, size=n)
            grades = np.clip(truth + noise * (rng.random(n) < 0.4), 0, 4)
            prefix, suffix = f"{expert.pk}\t", f"\t{STAMP}\t{STAMP}\t5\n"
            yield "".join(
                prefix + c + "\t" + GRADES[g] + suffix
                for c, g in zip(clip_text, grades)
            )

    _copy(
        "COPY annotation_vote (expert_id, clip_id, grade, created_at, updated_at,"
        " seconds_spent) FROM STDIN",
        chunks(),
    )
    services.distribution_recount()
    print(
        f"  {n * len(experts):,} votes copied and counted in "
        f"{time.monotonic() - began:.1f} s"
    )
    return clip_ids, patient_of


def _snapshot_share(j: int, n_snapshots: int) -> float:
    """Older snapshots hold fewer clips: 50 % for the first, 90 % for the last."""
    return 0.5 + 0.4 * j / max(1, n_snapshots - 1)


def _evidence(candidate, active, n: int, size: dict) -> dict:
    """What ``registry.comparison`` stores with an automatic decision."""
    return {
        "candidate": candidate.number,
        "active": active.number,
        "active_id": active.pk,
        "snapshot_sha256": f"{0:064x}",
        "min_patients": 5,
        "n_snapshot_clips": n,
        "n_left_out": 0,
        "n_without_active": 0,
        "n_without_candidate": 0,
        "active_sources": {"oof": n, "final": 0},
        "n_clips": n,
        "n_patients": size["patients"],
        "candidate_emd": 0.051,
        "reference_emd": 0.052,
        "delta": -0.001,
        "low": -0.002,
        "high": 0.0004,
        "level": 0.95,
        "n_boot": 2000,
        "seed": 0,
        "verdict": "level",
    }


def load_registry(size: dict, clip_ids: np.ndarray, media: Path) -> dict:
    """Snapshots, runs with folds, versions with their decisions; returns ids."""
    from registry.models import (
        ModelVersion,
        RunStatus,
        Snapshot,
        TrainingFold,
        TrainingRun,
        VersionEvent,
    )

    began = time.monotonic()
    n, n_snap, n_runs = len(clip_ids), size["snapshots"], size["runs"]
    all_ids = clip_ids.tolist()
    cutoff0 = datetime(2026, 1, 1, tzinfo=UTC)
    snapshots = []
    for j in range(n_snap):
        share = _snapshot_share(j, n_snap)
        ids = all_ids[: int(n * share)]
        snapshots.append(
            Snapshot.objects.create(
                sha256=f"{j:064x}",
                cutoff=cutoff0 + timedelta(days=j),
                min_votes=3,
                n_clips=len(ids),
                n_votes=len(ids) * size["experts"],
                clip_ids=ids,
                fully_voted_ids=ids,
                path=f"registry/snapshots/{j:064x}",
            )
        )
    metric_keys = ("emd", "mse", "jsd", "ce", "hi", "macro_f1", "mode_accuracy")
    config = {
        "model": {"name": "clinic", "width": 32, "depth": 4, "dropout": 0.1},
        "data": {"frames": 16, "size": 64, "control": "speed", "augment": True},
        "train": {"epochs": 30, "batch_size": 32, "lr": 0.001, "loss": "emd"},
        "cv": {"k": 5, "seed": 0},
        "notes": "x" * 1500,
    }
    rng = np.random.default_rng(1)
    runs = []
    for i in range(n_runs):
        snap = snapshots[i * n_snap // n_runs]
        at = cutoff0 + timedelta(hours=i)
        runs.append(
            TrainingRun(
                profile="clinic",
                config=config,
                queue="gpu",
                trigger="nightly",
                snapshot=snap,
                status=RunStatus.DONE,
                progress={"epoch": 30, "epochs": 30},
                log_tail="epoch 30/30 loss 0.0412 val 0.0455\n" * 40,
                timings={"snapshot": 12.0, "train": 1800.0, "predict": 60.0},
                started_at=at,
                finished_at=at + timedelta(minutes=40),
            )
        )
    runs = TrainingRun.objects.bulk_create(runs, batch_size=1000)
    folds = [
        TrainingFold(
            run=run,
            index=k,
            status=RunStatus.DONE,
            metrics={m: float(rng.random()) for m in metric_keys},
            log_tail="epoch 30/30\n" * 20,
            worker_host="gpu-1",
            device_name="NVIDIA H100",
        )
        for run in runs
        for k in (0, 1, 2, 3, 4, -1)
    ]
    TrainingFold.objects.bulk_create(folds, batch_size=5000)
    versions = []
    for i, run in enumerate(runs):
        emd = 0.08 - 0.03 * i / n_runs + 0.002 * float(rng.random())
        mean = {m: float(rng.random()) for m in metric_keys} | {"emd": emd}
        std = {m: 0.01 for m in metric_keys}
        versions.append(
            ModelVersion(
                number=i + 1,
                run=run,
                snapshot=run.snapshot,
                profile="clinic",
                model_name="clinic",
                metrics={
                    "k": 5,
                    "mean": mean,
                    "std": std,
                    "folds": [
                        {"test": mean, "best_epoch": 20 + k, "history": [mean] * 30}
                        for k in range(5)
                    ],
                },
                emd_mean=emd,
                emd_std=0.004,
                baseline_emd=0.12,
                artifact_path=f"registry/models/run-{run.pk}",
                code_version="bench",
            )
        )
    versions = ModelVersion.objects.bulk_create(versions, batch_size=500)
    active = versions[-2]  # the newest is held, awaiting an admin
    ModelVersion.objects.filter(pk=active.pk).update(is_active=True)
    events = []
    for i, v in enumerate(versions):
        promoted = i % 10 == 0 or v.pk == active.pk
        events.append(
            VersionEvent(
                version=v,
                action=VersionEvent.Action.AUTO_PROMOTED
                if promoted
                else VersionEvent.Action.HELD,
                reason="paired comparison on the candidate's snapshot",
                evidence=_evidence(v, versions[max(0, i - 1)], n, size),
            )
        )
    VersionEvent.objects.bulk_create(events, batch_size=1000)
    print(
        f"  {n_snap} snapshots, {n_runs:,} runs, {len(folds):,} folds, "
        f"{len(versions):,} versions in {time.monotonic() - began:.1f} s"
    )
    return {
        "snapshots": snapshots,
        "versions": versions,
        "active": active,
        "runs": runs,
    }


def load_predictions(
    size: dict,
    registry: dict,
    clip_ids: np.ndarray,
    patient_of: np.ndarray,
    media: Path,
) -> list:
    """Every clip predicted by the newest ``predicted_versions`` versions (out of
    fold inside their snapshot, final model outside), with their out-of-fold
    files and their snapshots' manifests on disk."""
    from annotation.models import ClipDistribution
    from registry import storage

    began = time.monotonic()
    predicted = registry["versions"][-size["predicted_versions"] :]
    n = len(clip_ids)
    counts = dict(
        (c, [a, b, cc, d, e])
        for c, a, b, cc, d, e in ClipDistribution.objects.values_list(
            "clip_id", "n_a", "n_b", "n_c", "n_d", "n_e"
        )
    )
    votes = np.array([counts[int(c)] for c in clip_ids], dtype=float)
    target = votes / votes.sum(axis=1, keepdims=True)
    pseudonym = [storage.patient_pseudonym(f"BENCH-P-{i:05d}") for i in patient_of]
    snapshot_index = {s.pk: j for j, s in enumerate(registry["snapshots"])}
    written = set()
    rng = np.random.default_rng(2)
    for version in predicted:
        j = snapshot_index[version.snapshot_id]
        inside = int(n * _snapshot_share(j, size["snapshots"]))
        if j not in written:  # the snapshot's manifest
            folder = media / version.snapshot.path
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "manifest.jsonl", "w") as out:
                for i in range(inside):
                    row = {
                        "array": f"clips/{clip_ids[i]}.npy",
                        "clip_id": str(clip_ids[i]),
                        "patient_id": pseudonym[i],
                        "votes": [int(v) for v in votes[i]],
                    }
                    out.write(json.dumps(row, sort_keys=True) + "\n")
            (folder / "dataset.json").write_text(
                json.dumps(
                    {
                        "format": "spermgrade-manifest",
                        "version": 1,
                        "n_clips": inside,
                        "manifest_sha256": version.snapshot.sha256,
                    }
                )
            )
            written.add(j)
        pred = 0.7 * target + 0.3 * rng.dirichlet(np.ones(5), size=n)
        folder = media / version.artifact_path
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "oof_predictions.jsonl", "w") as out:
            for i in range(inside):
                row = {
                    "clip_id": int(clip_ids[i]),
                    "patient_id": pseudonym[i],
                    "target": target[i].round(4).tolist(),
                    "pred": pred[i].round(4).tolist(),
                    "fold": i % 5,
                }
                out.write(json.dumps(row) + "\n")

        def chunks(version=version, pred=pred, inside=inside):
            buffer = io.StringIO()
            for i in range(n):
                source, fold = ("oof", str(i % 5)) if i < inside else ("final", r"\N")
                p = "\t".join(f"{x:.5f}" for x in pred[i])
                buffer.write(
                    f"{clip_ids[i]}\t{version.pk}\t{p}\t{source}\t{fold}\t{STAMP}\n"
                )
                if i % 20000 == 19999:
                    yield buffer.getvalue()
                    buffer = io.StringIO()
            yield buffer.getvalue()

        _copy(
            "COPY registry_prediction (clip_id, version_id, p_a, p_b, p_c, p_d, p_e,"
            " source, fold, created_at) FROM STDIN",
            chunks(),
        )
    print(
        f"  {n * len(predicted):,} predictions of {len(predicted)} versions, "
        f"their out-of-fold files and manifests in {time.monotonic() - began:.1f} s"
    )
    return predicted


# --- timing --------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def time_page(client, url: str, repeats: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def one() -> tuple[float, int]:
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        # Untimed: a page that builds millions of objects leaves cycles that
        # would otherwise pile up over the requests (the code before issue 26
        # part 3 reached 22 GB that way).
        del response
        gc.collect()
        return elapsed, len(queries)

    try:
        cold_s, cold_queries = one()
        first_s, first_queries = one()
        n = SLOW_REPEATS if first_s > SLOW_S else repeats
        times, counts = [first_s], [cold_queries, first_queries]
        for _ in range(n - 1):
            elapsed, count = one()
            times.append(elapsed)
            counts.append(count)
    except MemoryError:
        gc.collect()
        return {"error": "MemoryError (over --max-memory-gb)", "requests": 1}
    return {
        "median_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(_p95(times) * 1000, 1),
        "cold_ms": round(cold_s * 1000, 1),
        "queries": max(counts),
        "requests": n,
    }


def pages(registry: dict, predicted: list, clip_ids, expert_id: int) -> dict:
    active = registry["active"]
    newest = registry["versions"][-1]
    run = registry["runs"][-1]
    others = [v for v in predicted if v.pk != active.pk][-3:]
    compare = "&".join(f"v={v.pk}" for v in others)
    middle = len(clip_ids) // 2 // 50
    return {
        "registry_home": "/registry/",
        "registry_run": f"/registry/runs/{run.pk}/",
        "registry_version": f"/registry/versions/{newest.pk}/",
        "registry_version_page_far": f"/registry/versions/{newest.pk}/?page={middle}",
        "registry_compare_default": "/registry/versions/compare/",
        "registry_compare_three": f"/registry/versions/compare/?{compare}",
        "api_profiles": "/api/registry/profiles/",
        "api_runs": "/api/registry/runs/",
        "api_run": f"/api/registry/runs/{run.pk}/",
        "api_versions": "/api/registry/versions/",
        "api_version": f"/api/registry/versions/{newest.pk}/",
        "api_predictions": f"/api/registry/versions/{newest.pk}/predictions/",
        "api_predictions_far": f"/api/registry/versions/{newest.pk}/predictions/"
        f"?offset={len(clip_ids) // 2}",
        "api_snapshots": "/api/registry/snapshots/",
        "dash_panel": "/dashboards/",
        "dash_expert": f"/dashboards/experts/{expert_id}/",
        "dash_clips": "/dashboards/clips/?sort=disagreement",
        "dash_clip_review": f"/dashboards/clips/{int(clip_ids[len(clip_ids) // 3])}/",
        "dash_model": "/dashboards/models/",
        "dash_model_version": f"/dashboards/models/{newest.pk}/",
        "dash_model_clips": f"/dashboards/models/{newest.pk}/clips/?filter=disagree",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="0.1: 10,000 clips, 100 runs, ..."
    )
    parser.add_argument("--experts", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", default="", help="comma-separated page names")
    parser.add_argument(
        "--max-memory-gb",
        type=float,
        default=8.0,
        help="address space of this process: a page past it fails with MemoryError "
        "instead of the machine killing something (the machine is shared)",
    )
    args = parser.parse_args()
    size = _sized(args)
    web_load = _web_load()
    server = web_load.start_postgres()
    limit = int(args.max_memory_gb * 2**30)  # after PostgreSQL: not its limit
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        var = Path(tempfile.mkdtemp(prefix="registry-scale-"))
        web_load.configure_django(server, var)
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        call_command("migrate", verbosity=0)
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        settings.ALLOWED_HOSTS = ["*"]
        from annotation import services

        print(f"loading {json.dumps(size)} ...")
        experts = [
            services.expert_create(username=f"bench-{i}", password="x-bench-pass-1")
            for i in range(size["experts"])
        ]
        admin = services.admin_create(username="bench-admin", password="x-pass-12345")
        clip_ids, patient_of = load_clips_and_votes(size, experts)
        media = Path(settings.MEDIA_ROOT)
        registry = load_registry(size, clip_ids, media)
        predicted = load_predictions(size, registry, clip_ids, patient_of, media)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        began = time.monotonic()
        services.panel_statistics_refresh(force=True)
        print(f"  panel statistics in {time.monotonic() - began:.1f} s")

        client = Client(SERVER_NAME="127.0.0.1")
        client.force_login(admin)
        urls = pages(registry, predicted, clip_ids, experts[0].pk)
        if args.only:
            urls = {k: v for k, v in urls.items() if k in args.only.split(",")}
        results = {}
        if "dash_model" in urls:
            # The panel statistics are recomputed whenever votes change: the
            # model dashboard once they have been (its cold figure).
            urls["dash_model_after_statistics"] = urls["dash_model"]
        for name, url in urls.items():
            if name == "dash_model_after_statistics":
                from django.utils import timezone

                from annotation.models import PanelStatistics

                PanelStatistics.objects.update(computed_at=timezone.now())
            results[name] = time_page(client, url, args.repeats)
            r = results[name]
            if "error" in r:
                print(f"{name:28s} {r['error']}  {url}")
                continue
            print(
                f"{name:28s} median {r['median_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms"
                f"  cold {r['cold_ms']:8.1f} ms  {r['queries']:3d} queries"
                f"  ({r['requests']} requests)  {url}"
            )
        timed = {k: r for k, r in results.items() if "error" not in r}
        slowest = max(timed, key=lambda k: timed[k]["p95_ms"])
        print(
            json.dumps(
                {
                    "slowest_page": slowest,
                    "slowest_page_p95_ms": timed[slowest]["p95_ms"],
                    "max_queries": max(r["queries"] for r in timed.values()),
                    "failed_pages": sorted(set(results) - set(timed)),
                    "scale": args.scale,
                    "pages": results,
                }
            )
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
