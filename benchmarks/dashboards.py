"""Dashboard response times with 4 million votes, and the refresh behind them.

Starts a throwaway PostgreSQL, bulk-loads 100,000 clips × 40 simulated experts
(4,000,000 votes, COPY, as benchmarks/web_load.py does), recomputes the cached
panel statistics once (the periodic task's work), then times the admin pages
in-process with Django's test client: the disagreement dashboard, the clip
explorer and one expert's page. Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/dashboards.py [--clips 100000] [--experts 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
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


def _median_get(client, url: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--experts", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    web_load = _web_load()
    server = web_load.start_postgres()
    try:
        web_load.configure_django(server, Path(tempfile.mkdtemp(prefix="dash-")))
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client

        call_command("migrate", verbosity=0)
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        settings.ALLOWED_HOSTS = ["*"]
        from annotation import services

        experts = [
            services.expert_create(username=f"bench-{i}", password="x-bench-pass-1")
            for i in range(args.experts)
        ]
        admin = services.admin_create(username="bench-admin", password="x-pass-12345")
        print(f"loading {args.clips:,} clips × {args.experts} votes ...")
        web_load.load_distribution_data(
            n_clips=args.clips, experts=experts, with_triggers=False
        )
        start = time.perf_counter()
        cached = services.panel_statistics_refresh(force=True)
        refresh_s = time.perf_counter() - start
        print(f"panel statistics of {cached.n_votes:,} votes: {refresh_s:.1f} s")
        client = Client(SERVER_NAME="127.0.0.1")
        client.force_login(admin)
        panel_s = _median_get(client, "/dashboards/", args.repeats)
        clips_s = _median_get(
            client, "/dashboards/clips/?sort=disagreement", args.repeats
        )
        expert_s = _median_get(
            client, f"/dashboards/experts/{experts[0].pk}/", args.repeats
        )
        print(
            f"disagreement dashboard {panel_s:.3f} s, clip explorer {clips_s:.3f} s, "
            f"expert page {expert_s:.3f} s (median of {args.repeats})"
        )
        print(
            json.dumps(
                {
                    "votes": cached.n_votes,
                    "statistics_refresh_s": round(refresh_s, 1),
                    "panel_page_s": round(panel_s, 3),
                    "clip_explorer_page_s": round(clips_s, 3),
                    "expert_page_s": round(expert_s, 3),
                }
            )
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
