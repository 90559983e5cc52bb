"""``make demo`` for real (a scratch var folder, a free port): the page answers, and
Ctrl-C in the terminal or a TERM to make's process stops the web server and the
Celery worker, leaving no process of the demo behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc's parent links)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("demo") / "var"


def _start_demo(var_dir: Path) -> tuple[subprocess.Popen, int, set[int]]:
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "SPERMGRADE_"))
    }
    env.update(SPERMGRADE_VAR_DIR=str(var_dir), MAKEFLAGS="")
    log = (var_dir.parent / f"make-{port}.log").open("w")
    make = subprocess.Popen(
        ["make", "demo", f"PORT={port}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert make.poll() is None, (var_dir.parent / f"make-{port}.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5):
                break
        except OSError:
            time.sleep(1)
    else:
        make.kill()
        raise AssertionError("the demo's web server never answered")
    # The server answers; the worker (with beat) is up too.
    children = _descendants(make.pid)
    commands = " ".join(
        Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for pid in children
        if _alive(pid)
    )
    assert "runserver" in commands and "celery" in commands, commands
    return make, port, children


def _stopped(make: subprocess.Popen, port: int, children: set[int]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        make.poll() is None or any(_alive(p) for p in children)
    ):
        time.sleep(0.5)
    left = [p for p in children | {make.pid} if _alive(p)]
    for pid in left:  # the assertion below fails; leave nothing running
        os.kill(pid, signal.SIGKILL)
    make.wait(timeout=10)
    assert left == [], "left running after make stopped"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5)


def test_a_term_to_make_stops_the_server_and_the_worker(var_dir):
    make, port, children = _start_demo(var_dir)
    os.kill(make.pid, signal.SIGTERM)  # `kill <pid of make>`
    _stopped(make, port, children)


def test_ctrl_c_stops_the_server_and_the_worker(var_dir):
    make, port, children = _start_demo(var_dir)
    os.killpg(make.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
    _stopped(make, port, children)
