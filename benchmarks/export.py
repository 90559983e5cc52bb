"""Export and import at scale: 100,000 clips x 40 votes (4 million votes, and as
many vote-history rows), clip media left out.

Starts a throwaway PostgreSQL, bulk-loads the votes with COPY (as
benchmarks/web_load.py does) plus one history row per vote, then times
``exports.bundle.bundle_write`` on one core and its peak memory (tracemalloc's
peak of Python allocations plus the process's resident growth), then
``exports.importer.bundle_import`` of that bundle into a second, empty database.
Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/export.py [--clips 100000] [--experts 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--experts", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    web_load = _web_load()
    server = web_load.start_postgres()
    tmp = Path(tempfile.mkdtemp(prefix="export-bench-"))
    try:
        web_load.configure_django(server, tmp)
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
        from exports.bundle import bundle_write
        from exports.importer import bundle_import

        out = tmp / "export.zip"
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tracemalloc.start()
        start = time.perf_counter()
        summary = bundle_write(out)
        export_s = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"export: {summary['n_votes']:,} votes, {out.stat().st_size / 1e6:.0f} MB "
            f"in {export_s:.1f} s; Python peak {peak / 2**20:.0f} MB"
        )
        # Import into an empty database of the same server.
        connections.close_all()
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE annotation_clip, annotation_vote, annotation_votehistory, "
                "annotation_patient CASCADE"
            )
        start = time.perf_counter()
        result = bundle_import(out)
        import_s = time.perf_counter() - start
        print(f"import: {result['votes']:,} votes in {import_s:.1f} s")
        print(
            json.dumps(
                {
                    "clips": args.clips,
                    "votes": summary["n_votes"],
                    "bundle_mb": round(out.stat().st_size / 1e6, 1),
                    "export_4m_votes_s": round(export_s, 1),
                    "export_peak_mem_mb": round(peak / 2**20, 1),
                    "export_rss_growth_mb": round(rss_after - rss_before, 1),
                    "import_4m_votes_s": round(import_s, 1),
                }
            )
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
