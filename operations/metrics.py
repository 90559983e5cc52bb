"""Prometheus metrics: the web app's own (django-prometheus: requests, latencies,
responses, exceptions; the votes counter) and the loop's, read from the database
and the broker when Prometheus scrapes (queue lengths, workers, running tasks,
jobs by state, lost jobs, run durations).

Served at ``/metrics`` by ``operations.middleware`` to the monitoring network
only (METRICS_ALLOWED_NETWORKS, never through the proxy). Under gunicorn's
several processes set PROMETHEUS_MULTIPROC_DIR (docker-compose.yml does): each
process writes its counters there and a scrape adds them up.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from functools import lru_cache

import prometheus_client
from django.conf import settings
from django.db import DatabaseError
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from operations import monitoring

logger = logging.getLogger(__name__)

PREFIX = "spermgrade"


class LoopCollector(Collector):
    """The background side's state, read at scrape time (so the same from every
    web process, and right after a worker dies)."""

    def collect(self):
        lengths = monitoring.queue_lengths()
        up = GaugeMetricFamily(
            f"{PREFIX}_broker_up", "1 when the Celery broker answered this scrape"
        )
        up.add_metric([], 0 if lengths is None else 1)
        yield up
        queue = GaugeMetricFamily(
            f"{PREFIX}_queue_messages",
            "Tasks waiting in each Celery queue",
            labels=["queue"],
        )
        for name, length in sorted((lengths or {}).items()):
            queue.add_metric([name], length)
        yield queue
        try:
            yield from self._from_database()
        except DatabaseError as exc:
            logger.warning("metrics: database unreachable", exc_info=exc)

    def _from_database(self):
        worker_up = GaugeMetricFamily(
            f"{PREFIX}_worker_up",
            "1 while the worker reports (WORKER_SILENT_AFTER_SECONDS)",
            labels=["worker", "queues"],
        )
        worker_age = GaugeMetricFamily(
            f"{PREFIX}_worker_last_seen_seconds",
            "Seconds since the worker last reported",
            labels=["worker"],
        )
        for worker in monitoring.workers():
            queues = ",".join(worker["queues"])
            worker_up.add_metric(
                [worker["name"], queues], 1.0 if worker["state"] == "up" else 0.0
            )
            worker_age.add_metric([worker["name"]], worker["seen_age_s"])
        yield worker_up
        yield worker_age

        running = GaugeMetricFamily(
            f"{PREFIX}_tasks_running",
            "Tasks with a fresh heartbeat, by kind",
            labels=["kind"],
        )
        kinds: dict[str, int] = {}
        for task in monitoring.running_tasks():
            kinds[task["kind"]] = kinds.get(task["kind"], 0) + 1
        for kind, n in sorted(kinds.items()):
            running.add_metric([kind], n)
        yield running

        jobs = GaugeMetricFamily(
            f"{PREFIX}_jobs",
            "Background jobs and training runs by kind and state (failed ones "
            "included: their increase is the failures)",
            labels=["kind", "status"],
        )
        for (kind, status), n in sorted(monitoring.job_counts().items()):
            jobs.add_metric([kind, status], n)
        yield jobs

        lost = GaugeMetricFamily(
            f"{PREFIX}_tasks_lost",
            "Tasks whose worker died (reaped heartbeats), all time",
        )
        lost.add_metric([], monitoring.lost_total())
        yield lost

        durations = monitoring.run_durations()
        buckets = []
        for bound in monitoring.RUN_DURATION_BUCKETS:
            buckets.append((str(float(bound)), sum(1 for d in durations if d <= bound)))
        buckets.append(("+Inf", len(durations)))
        histogram = HistogramMetricFamily(
            f"{PREFIX}_training_run_duration_seconds",
            "Start to end of training runs that ended done",
            buckets=buckets,
            sum_value=sum(durations),
        )
        yield histogram


@lru_cache(maxsize=1)
def _loop_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoopCollector())
    return registry


def exposition() -> tuple[bytes, str]:
    """The scrape's body and content type: this process's (or, under
    PROMETHEUS_MULTIPROC_DIR, every process's) metrics, then the loop's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    body = prometheus_client.generate_latest(registry)
    body += prometheus_client.generate_latest(_loop_registry())
    return body, prometheus_client.CONTENT_TYPE_LATEST


def _allowed_networks():
    return tuple(
        ipaddress.ip_network(net, strict=False)
        for net in settings.METRICS_ALLOWED_NETWORKS
    )


def scrape_allowed(meta) -> bool:
    """Only a direct caller from METRICS_ALLOWED_NETWORKS: a request that came
    through the proxy (it adds X-Forwarded-For) never gets the metrics, whatever
    address it comes from."""
    if meta.get("HTTP_X_FORWARDED_FOR") or meta.get("HTTP_FORWARDED"):
        return False
    try:
        address = ipaddress.ip_address(meta.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())
