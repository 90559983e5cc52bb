"""Load benchmark of the grading API, served as in production (not a test).

What it does, all on loopback and bounded in time:

1. starts a throwaway PostgreSQL (``tests/servers/processes.py``) and migrates it;
2. creates 1,000 synthetic clips (placeholder media) and 40 experts with API tokens;
3. serves the app with gunicorn (gthread workers, DEBUG off, a SECRET_KEY);
4. runs 40 concurrent expert sessions for ``--seconds``: each loops
   ``POST /api/clips/next/`` then ``POST /api/votes/`` for the first clip offered,
   optionally pausing ``--think-ms`` between them as a person would;
5. replaces them with 100,000 clips x 40 votes (4,000,000 votes, COPY) and times
   the app's vectorised selector ``annotation.selectors.distribution_arrays`` over
   all of them, fully materialised (counts, probabilities, mode, mean, std, entropy:
   the JSON figure), plus ``distribution_for_clips`` (one dict per clip) for all and
   for an explicit list of 100,000 ids, and a GROUP BY over the raw votes.

Prints the figures; the last line is one JSON object (units in the keys).

    .venv/bin/python benchmarks/web_load.py [--seconds 30] [--experts 40]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing as mp
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.servers import (  # noqa: E402
    PostgresServer,
    ServerUnavailable,
    free_port,
    start_postgres,
)

GRADES = "ABCDE"
PLACEHOLDER_MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="load duration")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--experts", type=int, default=40, help="concurrent sessions")
    parser.add_argument("--clips", type=int, default=1000, help="clips for the load")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="pause of each session between next-clip and vote (0: back to back)",
    )
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=8)
    parser.add_argument(
        "--distribution-clips",
        type=int,
        default=100_000,
        help="clips for the distribution timing (each gets one vote per expert)",
    )
    parser.add_argument(
        "--copy-with-triggers",
        action="store_true",
        help="bulk-load the 4M votes through the count triggers (slower load)",
    )
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-distributions", action="store_true")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 600:
        parser.error("--seconds must lie in (0, 600]")
    if not 1 <= args.experts <= 200:
        parser.error("--experts must lie in [1, 200]")
    return args


# --- environment and data -----------------------------------------------------------


def configure_django(server: PostgresServer, var_dir: Path) -> dict[str, str]:
    """Production-like settings for this process and for gunicorn."""
    env = {
        "DATABASE_URL": server.url,
        "DEBUG": "false",
        # No sign-in fails here; production would set a Redis CACHE_URL.
        "CACHE_URL": "local",
        # gunicorn on plain HTTP here, without the TLS proxy.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SPERMGRADE_VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "STATIC_ROOT": str(var_dir / "static"),
        "LOG_LEVEL": "ERROR",
        "VOTES_PER_CLIP": "40",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    (var_dir / "static").mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    return env


def create_load_data(*, n_clips: int, n_experts: int) -> list[str]:
    """1,000 synthetic clips through the real service, 40 experts; returns tokens."""
    import numpy as np
    from django.conf import settings
    from rest_framework.authtoken.models import Token

    from annotation import services

    # Benchmark accounts log in with tokens only: a fast hasher spares 40 slow hashes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    patient = services.patient_get_or_create(code="BENCH-P-0001", is_synthetic=True)
    frames = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    track = [[8.0, 8.0]] * 4
    for index in range(n_clips):
        services.clip_create(
            patient=patient,
            frames=frames,
            fps=15.0,
            track=track,
            speed=float(index % 50),
            speed_unit="px/s",
            kinematics={},
            is_synthetic=True,
            latent_quality=None,
            video_bytes=PLACEHOLDER_MP4,
        )
    tokens = []
    for index in range(n_experts):
        user = services.expert_create(
            username=f"bench-expert-{index:03d}",
            password=secrets.token_urlsafe(16),
            code=f"BENCH-{index:04d}",
            is_simulated=True,
        )
        tokens.append(Token.objects.create(user=user).key)
    # What autovacuum does within a minute of such a load on a real instance: fresh
    # planner statistics. Without them the planner takes the just-filled clip table
    # for one row and the next-clip query probes the votes once per clip (17 ms
    # instead of 1.4 ms on 1,000 clips), which measured the load, not the app.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return tokens


# --- gunicorn -----------------------------------------------------------------------


def start_gunicorn(
    env: dict[str, str], *, workers: int, threads: int, log: Path, token: str
):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request(
                "POST", "/api/clips/next/", headers={"Authorization": f"Token {token}"}
            )
            connection.getresponse().read()
            connection.close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the load -----------------------------------------------------------------------


def expert_session(
    port: int,
    token: str,
    start_at: float,
    record_from: float,
    stop_at: float,
    think_s: float,
    seed: int,
    out: list,
    max_cycles: int | None = None,
) -> None:
    """One expert: next clip, vote on it, repeat until ``stop_at``.

    Appends (kind, latency_ms, ok, detail) to ``out`` for requests that started
    after ``record_from`` (the warm-up is not counted).
    """
    rng = random.Random(seed)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    tab = f"bench-{seed}"

    def call(kind: str, method: str, path: str, body: dict | None = None):
        nonlocal connection
        data = None if body is None else json.dumps(body).encode()
        request_headers = dict(headers)
        if data is not None:
            request_headers["Content-Type"] = "application/json"
        began = time.monotonic()
        try:
            connection.request(method, path, body=data, headers=request_headers)
            response = connection.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status, payload = 0, repr(exc).encode()
        elapsed_ms = (time.monotonic() - began) * 1000
        expected = 200 if kind == "next" else 201
        ok = status == expected
        if began >= record_from:
            detail = "" if ok else f"{status} {payload[:200]!r}"
            out.append((kind, elapsed_ms, ok, detail))
        return status, payload

    time.sleep(max(0.0, start_at - time.monotonic()))
    cycles = 0
    while time.monotonic() < stop_at and (max_cycles is None or cycles < max_cycles):
        cycles += 1
        status, payload = call("next", "POST", f"/api/clips/next/?tab={tab}")
        if status != 200:
            time.sleep(0.05)
            continue
        clips = json.loads(payload).get("clips") or []
        if not clips:
            break  # this expert graded everything
        if think_s:
            time.sleep(think_s * rng.uniform(0.5, 1.5))
        body = {
            "clip": clips[0]["id"],
            "grade": rng.choice(GRADES),
            "seconds_spent": round(rng.uniform(2, 12), 2),
        }
        call("vote", "POST", "/api/votes/", body)
    connection.close()


def client_process(
    port: int,
    tokens: list[str],
    first_seed: int,
    start_at: float,
    record_from: float,
    stop_at: float,
    think_s: float,
    queue: mp.Queue,
) -> None:
    results: list = []
    threads = [
        threading.Thread(
            target=expert_session,
            args=(
                port,
                token,
                start_at,
                record_from,
                stop_at,
                think_s,
                first_seed + i,
                results,
            ),
        )
        for i, token in enumerate(tokens)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(results)


def tree_cpu_s(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each root process and all its
    descendants, read from /proc; zeros where /proc is missing."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    totals = {}
    for name, root in roots.items():
        total = 0.0
        for pid, seconds in cpu.items():
            ancestor = pid
            while ancestor not in (root, 0, 1) and ancestor in parent:
                ancestor = parent[ancestor]
            if ancestor == root:
                total += seconds
        totals[name] = total
    return totals


def postmaster_pid(server: PostgresServer) -> int | None:
    """The PostgreSQL server process (its command line names the data directory)."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "postgres" in command and str(server.datadir) in command:
            return int(entry.name)
    return None


def run_load(
    port: int,
    tokens: list[str],
    args: argparse.Namespace,
    cpu_roots: dict[str, int] | None = None,
) -> dict:
    n_processes = max(1, min(args.client_processes, len(tokens)))
    groups = [tokens[i::n_processes] for i in range(n_processes)]
    start_at = time.monotonic() + 1.0
    record_from = start_at + args.warmup_seconds
    stop_at = record_from + args.seconds
    queue: mp.Queue = mp.get_context("fork").Queue()
    processes = []
    seed = 0
    for group in groups:
        process = mp.get_context("fork").Process(
            target=client_process,
            args=(
                port,
                group,
                seed,
                start_at,
                record_from,
                stop_at,
                args.think_ms / 1000,
                queue,
            ),
        )
        seed += len(group)
        process.start()
        processes.append(process)
    # The CPU the server side spends over the measured window: a cost per vote
    # that a busy host inflates far less than it inflates latency or votes/s.
    cpu_before = cpu_after = {}
    if cpu_roots:
        time.sleep(max(0.0, record_from - time.monotonic()))
        cpu_before = tree_cpu_s(cpu_roots)
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu_after = tree_cpu_s(cpu_roots)
    records: list = []
    for _ in processes:
        records.extend(queue.get(timeout=args.seconds + args.warmup_seconds + 120))
    for process in processes:
        process.join(timeout=30)
    measured_s = time.monotonic() - record_from
    figures = summarise(records, min(measured_s, args.seconds + 30))
    votes = figures["vote_count"]
    for name in cpu_after:
        used = cpu_after[name] - cpu_before[name]
        figures[f"{name}_cpu_ms_per_vote"] = 1000 * used / votes if votes else None
    return figures


def run_serial(port: int, token: str, cycles: int) -> dict:
    """One session alone: the service time of a request without queueing."""
    records: list = []
    now = time.monotonic()
    expert_session(port, token, now, now, now + 60, 0.0, 10_000, records, cycles)
    return summarise(records, max(time.monotonic() - now, 1e-9))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarise(records: list, seconds: float) -> dict:
    next_ms = [ms for kind, ms, ok, _ in records if kind == "next" and ok]
    vote_ms = [ms for kind, ms, ok, _ in records if kind == "vote" and ok]
    failures = [(kind, detail) for kind, _, ok, detail in records if not ok]
    if failures:
        print(f"{len(failures)} failed requests, first ones:")
        for kind, detail in failures[:5]:
            print(f"  {kind}: {detail}")
    figures = {
        "votes_per_s": len(vote_ms) / seconds,
        "next_per_s": len(next_ms) / seconds,
        "errors": len(failures),
    }
    for name, values in (("next", next_ms), ("vote", vote_ms)):
        for q in (50, 95, 99):
            figures[f"{name}_p{q}_ms"] = percentile(values, q)
        figures[f"{name}_mean_ms"] = (
            statistics.fmean(values) if values else float("nan")
        )
        figures[f"{name}_count"] = len(values)
    return figures


# --- distributions of 4 million votes -----------------------------------------------


def load_distribution_data(
    *, n_clips: int, experts: list, with_triggers: bool
) -> list[int]:
    """Bulk-load n_clips clips and one vote per expert and clip; returns clip ids.

    Votes go in with COPY. By default foreign-key and count triggers are skipped
    during the copy (session_replication_role = replica) and the counts are then
    rebuilt once by the app's own ``services.distribution_recount``, which is what
    the triggers would have produced row by row; ``with_triggers`` keeps them on.
    """
    import numpy as np
    from django.db import connection, transaction

    from annotation import services
    from annotation.models import Clip, Patient

    # Only these clips in the tables, so "all clips" means the 100,000.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE annotation_clip CASCADE")
    patient = Patient.objects.create(code="BENCH-P-DIST", is_synthetic=True)
    began = time.monotonic()
    clips = Clip.objects.bulk_create(
        [
            Clip(patient=patient, n_frames=16, fps=15.0, is_synthetic=True)
            for _ in range(n_clips)
        ],
        batch_size=5000,
    )
    clip_ids = np.array([clip.pk for clip in clips], dtype=np.int64)
    print(f"  {n_clips:,} clips inserted in {time.monotonic() - began:.1f} s")

    rng = np.random.default_rng(0)
    began = time.monotonic()
    stamp = "2026-01-01 00:00:00+00"
    copy_sql = (
        "COPY annotation_vote (expert_id, clip_id, grade, created_at, updated_at,"
        " seconds_spent) FROM STDIN"
    )
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor() as pg:
            if not with_triggers:
                pg.execute("SET LOCAL session_replication_role = replica")
            with pg.copy(copy_sql) as copy:
                clip_text = [str(int(c)) for c in clip_ids]
                for expert in experts:
                    grades = rng.integers(0, 5, size=len(clip_ids))
                    buffer = io.StringIO()
                    prefix = f"{expert.pk}\t"
                    suffix = f"\t{stamp}\t{stamp}\t5\n"
                    for clip_id, grade in zip(clip_text, grades):
                        buffer.write(prefix + clip_id + "\t" + GRADES[grade] + suffix)
                    copy.write(buffer.getvalue())
    n_votes = len(experts) * len(clip_ids)
    how = "through the count triggers" if with_triggers else "with triggers off"
    print(f"  {n_votes:,} votes copied {how} in {time.monotonic() - began:.1f} s")
    began = time.monotonic()
    if not with_triggers:
        services.distribution_recount()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  counts rebuilt/analysed in {time.monotonic() - began:.1f} s")
    return [int(c) for c in clip_ids]


def time_distributions(clip_ids: list[int], repeats: int = 3) -> dict:
    """Median seconds of the app's distribution selectors, fully materialised, and
    of a GROUP BY over the raw votes for comparison; checks they agree.

    The tables hold only ``clip_ids``, so ``clip_ids=None`` means all of them.
    """
    from django.db import connection

    from annotation.selectors import distribution_arrays, distribution_for_clips

    timings: dict[str, list[float]] = {
        "dicts_all": [],
        "arrays_all": [],
        "dicts_ids": [],
    }
    for _ in range(repeats):
        began = time.monotonic()
        everything = distribution_for_clips(clip_ids=None)
        timings["dicts_all"].append(time.monotonic() - began)

        began = time.monotonic()
        arrays = distribution_arrays(clip_ids=None)
        timings["arrays_all"].append(time.monotonic() - began)

        began = time.monotonic()
        chosen = distribution_for_clips(clip_ids=clip_ids)
        timings["dicts_ids"].append(time.monotonic() - began)
    for name, found in (
        ("distribution_for_clips(clip_ids=None)", len(everything)),
        ("distribution_arrays(clip_ids=None)", len(arrays.clip_ids)),
        ("distribution_for_clips(clip_ids=ids)", len(chosen)),
    ):
        if found != len(clip_ids):
            raise RuntimeError(f"{name} gave {found} rows for {len(clip_ids)} clips")

    aggregate_sql = (
        "SELECT clip_id, "
        + ", ".join(f"COUNT(*) FILTER (WHERE grade = '{g}')" for g in GRADES)
        + " FROM annotation_vote GROUP BY clip_id"
    )
    timings["aggregate"] = []
    for _ in range(repeats):
        began = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(aggregate_sql)
            rows = cursor.fetchall()
        timings["aggregate"].append(time.monotonic() - began)
    fresh = {row[0]: [int(c) for c in row[1:]] for row in rows}
    mismatches = sum(
        1
        for clip_id in clip_ids
        if everything[clip_id]["counts"] != fresh.get(clip_id)
        or chosen[clip_id]["counts"] != fresh.get(clip_id)
    )
    return {
        **{f"{name}_s": statistics.median(values) for name, values in timings.items()},
        "mismatches": mismatches,
    }


# --- main ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at"
        " start (other work on the machine inflates every figure)"
    )
    work = Path(tempfile.mkdtemp(prefix="spermgrade-bench-"))
    try:
        server = start_postgres(max_connections=300)
    except ServerUnavailable as exc:
        print(f"cannot start PostgreSQL: {exc}", file=sys.stderr)
        return 2
    gunicorn = None
    try:
        env = configure_django(server, work / "var")
        from django.core.management import call_command
        from django.db import connections

        began = time.monotonic()
        call_command("migrate", verbosity=0, interactive=False)
        print(
            f"PostgreSQL on 127.0.0.1:{server.port}, migrated in "
            f"{time.monotonic() - began:.1f} s"
        )
        began = time.monotonic()
        tokens = create_load_data(n_clips=args.clips, n_experts=args.experts)
        print(
            f"{args.clips} clips and {args.experts} experts created in "
            f"{time.monotonic() - began:.1f} s"
        )

        figures: dict = {}
        if not args.skip_load:
            gunicorn, port = start_gunicorn(
                env,
                workers=args.gunicorn_workers,
                threads=args.gunicorn_threads,
                log=work / "gunicorn.log",
                token=tokens[0],
            )
            print(
                f"gunicorn on 127.0.0.1:{port}: {args.gunicorn_workers} workers x "
                f"{args.gunicorn_threads} threads; {args.experts} sessions in "
                f"{args.client_processes} client processes, think {args.think_ms} ms,"
                f" {args.warmup_seconds} s warm-up + {args.seconds} s measured"
            )
            serial = run_serial(port, tokens[-1], cycles=40)
            print(
                "one session alone (service time, no queueing): next p50/p95"
                f" {serial['next_p50_ms']:.1f}/{serial['next_p95_ms']:.1f} ms,"
                f" vote p50/p95 {serial['vote_p50_ms']:.1f}/"
                f"{serial['vote_p95_ms']:.1f} ms"
            )
            connections.close_all()  # the client processes fork from here
            roots = {"gunicorn": gunicorn.pid}
            if (postmaster := postmaster_pid(server)) is not None:
                roots["postgres"] = postmaster
            figures = run_load(port, tokens, args, cpu_roots=roots)
            stop_process(gunicorn)
            gunicorn = None
            print(f"load average after the load: {os.getloadavg()[0]:.1f}")
            print(
                f"load: {figures['votes_per_s']:.1f} votes/s, "
                f"next p50/p95/p99 {figures['next_p50_ms']:.1f}/"
                f"{figures['next_p95_ms']:.1f}/{figures['next_p99_ms']:.1f} ms, "
                f"vote p50/p95/p99 {figures['vote_p50_ms']:.1f}/"
                f"{figures['vote_p95_ms']:.1f}/{figures['vote_p99_ms']:.1f} ms, "
                f"{figures['errors']} errors"
            )
            if figures.get("gunicorn_cpu_ms_per_vote") is not None:
                print(
                    "CPU per vote (next clip + vote) over the measured window:"
                    f" gunicorn {figures['gunicorn_cpu_ms_per_vote']:.1f} ms,"
                    f" PostgreSQL {figures.get('postgres_cpu_ms_per_vote') or 0:.1f} ms"
                )

        distributions: dict = {}
        if not args.skip_distributions:
            from django.contrib.auth import get_user_model

            experts = list(
                get_user_model().objects.filter(username__startswith="bench-expert-")
            )
            print(
                f"distributions: {args.distribution_clips:,} clips x "
                f"{len(experts)} votes"
            )
            clip_ids = load_distribution_data(
                n_clips=args.distribution_clips,
                experts=experts,
                with_triggers=args.copy_with_triggers,
            )
            distributions = time_distributions(clip_ids)
            print(
                "  median of 3, fully materialised:"
                f" distribution_for_clips(all) {distributions['dicts_all_s']:.3f} s,"
                f" distribution_arrays(all) {distributions['arrays_all_s']:.3f} s,"
                f" distribution_for_clips(100k ids) {distributions['dicts_ids_s']:.3f}"
                f" s; GROUP BY over the votes {distributions['aggregate_s']:.3f} s;"
                " clips whose counts differ from the votes:"
                f" {distributions['mismatches']}"
            )

        def rounded(key: str, source: dict, digits: int = 1):
            value = source.get(key)
            return None if value is None else round(value, digits)

        print(
            json.dumps(
                {
                    "experts": args.experts,
                    "votes_per_s": rounded("votes_per_s", figures),
                    "next_p50_ms": rounded("next_p50_ms", figures),
                    "next_p95_ms": rounded("next_p95_ms", figures),
                    "next_p99_ms": rounded("next_p99_ms", figures),
                    "vote_p50_ms": rounded("vote_p50_ms", figures),
                    "vote_p95_ms": rounded("vote_p95_ms", figures),
                    "vote_p99_ms": rounded("vote_p99_ms", figures),
                    "errors": figures.get("errors"),
                    "gunicorn_cpu_ms_per_vote": rounded(
                        "gunicorn_cpu_ms_per_vote", figures, 2
                    ),
                    "postgres_cpu_ms_per_vote": rounded(
                        "postgres_cpu_ms_per_vote", figures, 2
                    ),
                    "distributions_4m_votes_s": rounded(
                        "arrays_all_s", distributions, 3
                    ),
                }
            )
        )
        return 0
    finally:
        if gunicorn is not None:
            stop_process(gunicorn)
        if "django.db" in sys.modules:
            sys.modules["django.db"].connections.close_all()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
