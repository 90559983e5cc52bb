"""Throwaway PostgreSQL and Redis servers on 127.0.0.1, from the machine's binaries.

Used by the test plugin (``tests/servers/plugin.py``) and by benchmarks. No pytest here.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The server's binaries are missing or it would not start; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _postgres_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@dataclass
class PostgresServer:
    port: int
    datadir: Path
    bindir: Path
    as_user: str | None
    user: str = "postgres"
    dbname: str = "spermgrade"
    _tmp: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    def _cmd(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        return [*prefix, *args]

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "immediate",
                "-w",
                "stop",
            ),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self._tmp, ignore_errors=True)


def start_postgres(*, max_connections: int = 200) -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port; trust auth; fsync off."""
    bindir = _postgres_bindir()
    if bindir is None:
        raise ServerUnavailable(
            "PostgreSQL binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        )
    as_user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable(
                "running as root but there is no 'postgres' user to run PostgreSQL as "
                "(apt-get install postgresql creates it)"
            ) from None
        if not shutil.which("runuser"):
            raise ServerUnavailable("running as root and runuser is missing")
        as_user = "postgres"
    tmp = Path(tempfile.mkdtemp(prefix="spermgrade-pg-"))
    datadir, sockdir = tmp / "data", tmp / "sock"
    sockdir.mkdir()
    if as_user:
        shutil.chown(tmp, as_user)
        shutil.chown(sockdir, as_user)
    tmp.chmod(0o755)
    port = free_port()
    server = PostgresServer(port, datadir, bindir, as_user, _tmp=tmp)
    init = subprocess.run(
        server._cmd(
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ServerUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    options = (
        f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
        f"-c synchronous_commit=off -c full_page_writes=off "
        f"-c max_connections={max_connections} -c shared_buffers=256MB"
    )
    start = subprocess.run(
        server._cmd(
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-o",
            options,
            "-l",
            str(tmp / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if start.returncode != 0 or not _wait_for_port(port, 30):
        log = (
            (tmp / "postgres.log").read_text(errors="replace")[-800:]
            if (tmp / "postgres.log").exists()
            else ""
        )
        server.stop()
        raise ServerUnavailable(
            f"PostgreSQL did not start: {start.stderr.strip()} {log}"
        )
    created = subprocess.run(
        [
            str(bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            f"CREATE DATABASE {server.dbname}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0:
        server.stop()
        raise ServerUnavailable(f"could not create database: {created.stderr.strip()}")
    return server


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server not found; apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not _wait_for_port(port, 15):
        process.kill()
        raise ServerUnavailable("redis-server did not start listening within 15 s")
    return RedisServer(port, process)
