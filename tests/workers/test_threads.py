"""Each worker process gives a task's computation its share of the cores: the
CPU affinity divided by the concurrency, at least one, or WORKER_COMPUTE_THREADS.
Checked on real Celery workers (prefork children and the solo pool), pinned to
known cores with taskset so the figures do not depend on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from workers.threads import compute_threads


def test_share_of_the_cores():
    assert compute_threads(concurrency=2, cores=2) == 1
    assert compute_threads(concurrency=1, cores=8) == 8
    assert compute_threads(concurrency=3, cores=8) == 2
    assert compute_threads(concurrency=16, cores=4) == 1  # never 0
    assert compute_threads(concurrency=2, cores=2, override=3) == 3


def _worker_threads(tmp_path: Path, cores: str, *args: str, **env: str) -> set[int]:
    """Start a worker pinned to ``cores``; the compute threads its processes log."""
    log_path = tmp_path / f"worker-{len(list(tmp_path.iterdir()))}.log"
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "SPERMGRADE_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        **env,
    }
    if "CELERY_BROKER_URL" not in env:
        environ.pop("CELERY_BROKER_URL", None)  # the filesystem broker
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            ["taskset", "-c", cores, sys.executable, "-m", "celery", "-A",
             "config.celery", "worker", "-Q", "cpu", "-l", "info",
             "--without-gossip", "--without-mingle", "--without-heartbeat", *args],
            cwd=REPO_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            expected = (
                int(args[args.index("--concurrency") + 1]) if "prefork" in args else 1
            )
            while time.monotonic() < deadline:
                found = re.findall(
                    r"compute threads per task: (\d+)", log_path.read_text()
                )
                if len(found) >= expected:
                    return {int(n) for n in found}
                assert worker.poll() is None, log_path.read_text()[-3000:]
                time.sleep(0.5)
            raise AssertionError(log_path.read_text()[-3000:])
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.skipif(
    shutil.which("taskset") is None or (os.cpu_count() or 1) < 2,
    reason="needs taskset and two cores",
)
def test_real_workers_set_their_share(tmp_path, redis_server):
    env = {
        **os.environ,
        "DEBUG": "true",
        "SPERMGRADE_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    # Two pool processes on two cores (prefork, through Redis): one thread each.
    redis = {"CELERY_BROKER_URL": redis_server.url}
    assert _worker_threads(
        tmp_path, "0,1", "--pool", "prefork", "--concurrency", "2", **redis
    ) == {1}
    # The embedded broker's threads pool, two threads on two cores: one each.
    assert _worker_threads(tmp_path, "0,1", "--concurrency", "2") == {1}
    # One task at a time on two cores: both.
    assert _worker_threads(tmp_path, "0,1", "--pool", "solo") == {2}
    # On one core, one thread; the setting overrides.
    assert _worker_threads(tmp_path, "1", "--pool", "solo") == {1}
    assert _worker_threads(
        tmp_path, "0,1", "--pool", "solo", WORKER_COMPUTE_THREADS="3"
    ) == {3}


def test_applying_never_imports_torch_and_reaches_a_later_torch(monkeypatch):
    """In a fresh interpreter: the share goes to OMP_NUM_THREADS without loading
    PyTorch, and a PyTorch loaded afterwards runs that many threads."""
    code = (
        "import sys\n"
        "from workers.threads import threads_apply\n"
        "threads_apply(1)\n"
        "assert 'torch' not in sys.modules and 'cv2' not in sys.modules\n"
        "import torch\n"
        "print(torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "1"
