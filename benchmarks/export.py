"""Export and import at scale: 100,000 clips x 40 votes (4 million votes, and as
many vote-history rows), clip media left out, each clip with a 16-point track
and its kinematics.

Starts a throwaway PostgreSQL, bulk-loads the votes with COPY (as
benchmarks/web_load.py does) plus one history row per vote, then runs
``exports.bundle.bundle_write`` in a fresh process (as the export task does) and
reports its wall time and peak resident memory (the child's ru_maxrss, Django
and all), then ``exports.importer.bundle_import`` of that bundle, in another
fresh process, into the emptied database. The Python side runs on one core;
PostgreSQL is a separate process. Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/export.py [--clips 100000] [--experts 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _web_load():
    spec = importlib.util.spec_from_file_location(
        "web_load", ROOT / "benchmarks/web_load.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child(kind: str, path: str) -> int:
    """One export or import in this fresh process; prints its JSON result."""
    import django

    django.setup()
    from exports.bundle import bundle_write
    from exports.importer import bundle_import

    steps: dict[str, float] = {}
    start = time.perf_counter()
    if kind == "export":
        result = bundle_write(
            path,
            progress=lambda step, share: steps.setdefault(
                step, round(time.perf_counter() - start, 2)
            ),
        )
    else:
        result = bundle_import(path)
        result.pop("clip_ids", None)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"s": seconds, "peak_mb": peak_mb, "steps": steps, **result}))
    return 0


def _run_child(kind: str, path: Path, env: dict) -> dict:
    # One core for the Python side, as the issue asks (PostgreSQL runs apart).
    command = [sys.executable, __file__, "--child", kind, str(path)]
    if profile := os.environ.get("BENCH_PROFILE_DIR"):  # cProfile each child
        command[1:1] = ["-m", "cProfile", "-o", f"{profile}/{kind}.prof"]
    if hasattr(os, "sched_setaffinity"):
        command = ["taskset", "-c", "0", *command]
    done = subprocess.run(
        command,
        env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"the {kind} child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--experts", type=int, default=40)
    parser.add_argument(
        "--no-import", action="store_true", help="time the export only (faster)"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help="internal")
    args = parser.parse_args()
    if args.child:
        return _child(*args.child)
    web_load = _web_load()
    server = web_load.start_postgres()
    tmp = Path(tempfile.mkdtemp(prefix="export-bench-"))
    try:
        env = web_load.configure_django(server, tmp)
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection, connections

        call_command("migrate", verbosity=0)
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        from annotation import services

        experts = [
            services.expert_create(username=f"bench-{i}", password="x-bench-pass-1")
            for i in range(args.experts)
        ]
        print(f"loading {args.clips:,} clips x {args.experts} votes ...")
        web_load.load_distribution_data(
            n_clips=args.clips, experts=experts, with_triggers=False
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO annotation_votehistory (vote_id, expert_id, clip_id, "
                "action, grade, previous_grade, is_repeat, at) SELECT id, expert_id, "
                "clip_id, 'create', grade, '', false, created_at FROM annotation_vote"
            )
            # A realistic per-clip payload: a 16-point track and WHO kinematics.
            track = json.dumps([[40.0 + i, 60.0 + 0.5 * i] for i in range(16)])
            kinematics = json.dumps(
                {"vcl": 61.2, "vsl": 38.4, "vap": 45.0, "lin": 0.63, "str": 0.85}
            )
            cursor.execute(
                "UPDATE annotation_clip SET track = %s::jsonb, kinematics = %s::jsonb",
                [track, kinematics],
            )
            cursor.execute("VACUUM ANALYZE")
        out = tmp / "export.zip"
        exported = _run_child("export", out, env)
        print(
            f"export: {exported['n_votes']:,} votes, {exported['n_history']:,} "
            f"history rows, {out.stat().st_size / 1e6:.0f} MB in {exported['s']:.1f} "
            f"s, peak {exported['peak_mb']:.0f} MB; steps began {exported['steps']}"
        )
        result = {
            "clips": args.clips,
            "votes": exported["n_votes"],
            "history_rows": exported["n_history"],
            "bundle_mb": round(out.stat().st_size / 1e6, 1),
            "export_4m_votes_s": round(exported["s"], 1),
            "export_peak_mem_mb": round(exported["peak_mb"], 1),
        }
        if args.no_import:
            print(json.dumps(result))
            return 0
        connections.close_all()
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE annotation_clip, annotation_vote, annotation_repeatvote, "
                "annotation_votehistory, annotation_patient CASCADE"
            )
        imported = _run_child("import", out, env)
        print(
            f"import: {imported['votes']:,} votes in {imported['s']:.1f} s, "
            f"peak {imported['peak_mb']:.0f} MB"
        )
        result["import_4m_votes_s"] = round(imported["s"], 1)
        result["import_peak_mem_mb"] = round(imported["peak_mb"], 1)
        print(json.dumps(result))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
