"""Throwaway PostgreSQL and Redis servers on loopback: ``processes`` starts them
(also for benchmarks), ``plugin`` is the pytest plugin that hands them to the suite."""

from tests.servers.processes import (
    PostgresServer,
    RedisServer,
    ServerUnavailable,
    free_port,
    start_postgres,
    start_redis,
)

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerUnavailable",
    "free_port",
    "start_postgres",
    "start_redis",
]
