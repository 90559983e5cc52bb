"""Monitoring: /metrics (django-prometheus's request metrics, the votes counter and
the loop's state read at scrape time) only for the monitoring network, and the
admins' operations page with queue lengths, workers, running and lost tasks.

Queue lengths come from a real Redis broker with real messages in it; figures are
read back through prometheus_client's own parser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from annotation import services
from annotation.models import Job
from jobs.models import Heartbeat, WorkerPresence
from registry.models import RunStatus, TrainingRun
from tests.annotation.conftest import session_client
from tests.factories import AdminFactory, ClipFactory, ExpertFactory


def scrape(client: Client | None = None, **extra) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one scrape as web:8000."""
    response = (client or Client()).get("/metrics", HTTP_HOST="web:8000", **extra)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _worker(name, queues, *, age_s=0.0, stopped=False):
    seen = timezone.now() - timedelta(seconds=age_s)
    return WorkerPresence.objects.create(
        name=name,
        queues=queues,
        host="box",
        pid=1,
        started_at=seen - timedelta(hours=1),
        seen_at=seen,
        stopped_at=seen if stopped else None,
    )


def _heartbeat(subject, *, age_s=0.0, reaped=False, stage="fold 1 of 3"):
    now = timezone.now()
    return Heartbeat.objects.create(
        subject=subject,
        task="workers.tasks.training_fold",
        host="box",
        worker="gpu0@box",
        pid=4242,
        stage=stage,
        started_at=now - timedelta(seconds=age_s + 30),
        beat_at=now - timedelta(seconds=age_s),
        reaped_at=now if reaped else None,
        outcome="failed: the worker stopped" if reaped else "",
    )


def _run(status, seconds=None):
    start = timezone.now() - timedelta(days=1)
    return TrainingRun.objects.create(
        profile="clinic",
        queue="cpu",
        status=status,
        started_at=start if seconds is not None else None,
        finished_at=start + timedelta(seconds=seconds) if seconds is not None else None,
    )


@pytest.fixture
def loop_state(settings, redis_server):
    """Three tasks waiting on the gpu queue of a real Redis, none on cpu; two
    workers (one up, one silent); one running and one lost task; jobs and runs."""
    settings.CELERY_BROKER_URL = redis_server.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    with Connection(redis_server.url) as conn:
        queue = conn.SimpleQueue("gpu")
        queue.clear()
        for i in range(3):
            queue.put({"n": i})
        queue.close()
        conn.SimpleQueue("cpu").clear()
    _worker("cpu@box", ["cpu"])
    _worker("gpu0@box", ["gpu"], age_s=600)
    _heartbeat("fold:7:1")
    _heartbeat("export:3", age_s=900, reaped=True, stage="writing votes")
    Job.objects.create(kind="export", status=Job.Status.FAILED)
    Job.objects.create(kind="export", status=Job.Status.FAILED)
    Job.objects.create(kind="export", status=Job.Status.DONE)
    _run(RunStatus.DONE, seconds=120)
    _run(RunStatus.DONE, seconds=4000)
    _run(RunStatus.FAILED)
    yield
    with Connection(redis_server.url) as conn:
        conn.SimpleQueue("gpu").clear()


@pytest.mark.redis
@pytest.mark.django_db
def test_metrics_carry_queue_lengths_workers_tasks_jobs_and_run_durations(loop_state):
    samples = scrape()
    assert value(samples, "spermgrade_broker_up") == 1
    assert value(samples, "spermgrade_queue_messages", queue="gpu") == 3
    assert value(samples, "spermgrade_queue_messages", queue="cpu") == 0
    assert value(samples, "spermgrade_worker_up", worker="cpu@box", queues="cpu") == 1
    assert value(samples, "spermgrade_worker_up", worker="gpu0@box", queues="gpu") == 0
    age = value(samples, "spermgrade_worker_last_seen_seconds", worker="gpu0@box")
    assert 600 <= age < 700
    assert value(samples, "spermgrade_tasks_running", kind="fold") == 1
    assert value(samples, "spermgrade_tasks_running", kind="export") is None
    assert value(samples, "spermgrade_tasks_lost") == 1
    assert value(samples, "spermgrade_jobs", kind="export", status="failed") == 2
    assert value(samples, "spermgrade_jobs", kind="export", status="done") == 1
    assert value(samples, "spermgrade_jobs", kind="training_run", status="done") == 2
    assert value(samples, "spermgrade_jobs", kind="training_run", status="failed") == 1
    # Runs of 120 s and 4,000 s: cumulative buckets, count and sum by hand.
    name = "spermgrade_training_run_duration_seconds"
    assert value(samples, f"{name}_bucket", le="60.0") == 0
    assert value(samples, f"{name}_bucket", le="300.0") == 1
    assert value(samples, f"{name}_bucket", le="3600.0") == 1
    assert value(samples, f"{name}_bucket", le="7200.0") == 2
    assert value(samples, f"{name}_bucket", le="+Inf") == 2
    assert value(samples, f"{name}_count") == 2
    assert value(samples, f"{name}_sum") == pytest.approx(4120)


@pytest.mark.django_db
def test_metrics_count_requests_and_votes(django_capture_on_commit_callbacks):
    expert = ExpertFactory()
    clip = ClipFactory()
    before = scrape()

    def votes(samples, kind="vote"):
        return value(samples, "spermgrade_votes_recorded_total", kind=kind) or 0

    with django_capture_on_commit_callbacks(execute=True):
        services.vote_create(expert=expert, clip=clip, grade="B")
    client = Client()
    for _ in range(3):
        assert client.get("/login/").status_code == 200
    after = scrape()
    assert votes(after) - votes(before) == 1
    assert votes(after, "repeat") - votes(before, "repeat") == 0

    # django-prometheus's request metrics, by view and by status.
    def logins(samples):
        return (
            value(
                samples,
                "django_http_requests_total_by_view_transport_method_total",
                view="login",
                transport="http",
                method="GET",
            )
            or 0
        )

    assert logins(after) - logins(before) == 3
    assert any(name.startswith("django_http_requests_latency") for name, _ in after)


@pytest.mark.django_db
def test_a_vote_rolled_back_is_not_counted(django_capture_on_commit_callbacks):
    from django.db import transaction

    expert, clip = ExpertFactory(), ClipFactory()
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.vote_create(expert=expert, clip=clip, grade="B")
                raise RuntimeError("the request failed after the insert")
        except RuntimeError:
            pass
    assert callbacks == []
    after = scrape()
    name = "spermgrade_votes_recorded_total"
    assert (value(after, name, kind="vote") or 0) == (
        value(before, name, kind="vote") or 0
    )


@pytest.mark.django_db
def test_metrics_only_for_direct_callers_from_the_monitoring_network(settings):
    client = Client()
    # The test client calls from 127.0.0.1: allowed by default.
    assert client.get("/metrics", HTTP_HOST="web:8000").status_code == 200
    # Through the proxy (it adds X-Forwarded-For), even from an allowed address.
    through_proxy = client.get(
        "/metrics", HTTP_HOST="grade.example.org", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert through_proxy.status_code == 404
    assert b"spermgrade" not in through_proxy.content
    assert client.get("/metrics", HTTP_FORWARDED="for=1.2.3.4").status_code == 404
    # Another address: 404, as if there were nothing.
    other = client.get("/metrics", HTTP_HOST="web:8000", REMOTE_ADDR="172.18.0.5")
    assert other.status_code == 404
    settings.METRICS_ALLOWED_NETWORKS = ["172.31.250.0/24"]
    allowed = client.get("/metrics", HTTP_HOST="web:8000", REMOTE_ADDR="172.31.250.7")
    assert allowed.status_code == 200
    assert client.get("/metrics", HTTP_HOST="web:8000").status_code == 404  # not 127.
    settings.METRICS_ALLOWED_NETWORKS = []  # "off"
    off = client.get("/metrics", HTTP_HOST="web:8000", REMOTE_ADDR="172.31.250.7")
    assert off.status_code == 404
    assert client.post("/metrics", REMOTE_ADDR="172.31.250.7").status_code == 405


@pytest.mark.django_db
def test_metrics_with_the_broker_down_still_answer(settings):
    from tests.servers.processes import free_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    samples = scrape()
    assert value(samples, "spermgrade_broker_up") == 0
    assert not [k for k in samples if k[0] == "spermgrade_queue_messages"]
    assert value(samples, "spermgrade_tasks_lost") == 0  # the database part still


@pytest.mark.redis
@pytest.mark.django_db
def test_operations_page_shows_queues_workers_running_and_lost_tasks(loop_state):
    url = reverse("operations_status")
    admin = session_client(AdminFactory())
    with CaptureQueriesContext(connection) as queries:
        page = admin.get(url)
    assert page.status_code == 200
    presence = WorkerPresence._meta.db_table
    assert sum(presence in q["sql"] for q in queries.captured_queries) == 1
    html = page.content.decode()
    assert '<tr data-queue="gpu"><td>gpu</td><td class="waiting">3</td>' in html
    assert '<tr data-queue="cpu"><td>cpu</td><td class="waiting">0</td><td>1' in html
    assert 'data-worker="gpu0@box"' in html and '<td class="state">silent</td>' in html
    assert 'data-subject="fold:7:1"' in html and "fold 1 of 3" in html
    assert "failed: the worker stopped" in html and "writing votes" in html
    assert 'data-subject="export:3"' not in html  # reaped: not running
    # Experts never see it; anonymous visitors are sent to sign in.
    assert session_client(ExpertFactory()).get(url).status_code == 403
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert (
        reverse("operations_status")
        in admin.get(reverse("admin_home")).content.decode()
    )


@pytest.mark.django_db
def test_operations_page_says_when_the_broker_is_down(settings):
    from tests.servers.processes import free_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    page = session_client(AdminFactory()).get(reverse("operations_status"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="broker-down"' in html
    assert '<td class="waiting">unknown</td>' in html


@pytest.mark.django_db
def test_queue_lengths_from_the_embedded_filesystem_broker(settings, tmp_path):
    from operations import monitoring

    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }
    with Connection(
        "filesystem://", transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS
    ) as conn:
        queue = conn.SimpleQueue("gpu")
        queue.put({"n": 1})
        queue.put({"n": 2})
        queue.close()
    assert monitoring.queue_lengths(["cpu", "gpu"]) == {"cpu": 0, "gpu": 2}


def test_compose_gives_metrics_to_the_monitoring_network_only():
    import re

    import yaml

    from tests.conftest import REPO_ROOT

    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    web = compose["services"]["web"]
    subnet = compose["networks"]["monitoring"]["ipam"]["config"][0]["subnet"]
    assert web["environment"]["METRICS_ALLOWED_NETWORKS"] == subnet
    assert set(web["networks"]) == {"default", "monitoring"}
    # gunicorn's processes share their counters; the folder is emptied on start,
    # before anything that imports prometheus_client runs.
    command = " ".join(web["command"])
    assert web["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert command.index('mkdir -p "$$PROMETHEUS_MULTIPROC_DIR"') < command.index(
        "manage.py migrate"
    )
    prometheus = compose["services"]["prometheus"]
    assert prometheus["networks"] == ["monitoring"]
    assert all(port.startswith("127.0.0.1:") for port in prometheus["ports"])
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    # The proxy answers /metrics itself, before reverse_proxy.
    caddyfile = (REPO_ROOT / "deploy" / "Caddyfile").read_text()
    refuse = re.search(r"^\s*respond /metrics\* 404$", caddyfile, re.M)
    assert refuse and refuse.start() < caddyfile.index("reverse_proxy web:8000")
