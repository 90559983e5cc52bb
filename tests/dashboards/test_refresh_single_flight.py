"""A stale dashboard queues at most one panel statistics refresh, however many
times it is viewed (and by concurrent requests on PostgreSQL); once that refresh
ends the next stale view may queue again, and a refresh that died does not block
the next one for ever."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation import services
from annotation.models import PanelStatisticsClaim
from annotation.services import panel_claim
from jobs.models import Heartbeat
from jobs.reaper import jobs_reap
from tests.factories import ClipFactory, ExpertFactory
from workers import tasks


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sent(monkeypatch):
    """The refresh messages sent (instead of a broker)."""
    messages: list[dict] = []
    lock = threading.Lock()

    def record(*, name, kwargs, on_unreachable=None, queue=None):
        with lock:
            messages.append(kwargs)

    monkeypatch.setattr(panel_claim, "task_send", record)
    return messages


@pytest.fixture
def stale_large_panel(settings):
    """Statistics computed once, then a new vote: stale, and too big to recompute
    inside the request (PANEL_STATISTICS_INLINE_VOTES=0)."""
    settings.PANEL_STATISTICS_INLINE_VOTES = 0
    clips = ClipFactory.create_batch(3)
    experts = ExpertFactory.create_batch(2)
    rows = [(e.pk, c.pk, "B") for c in clips for e in experts[:1]]
    services.votes_bulk_create_simulated(votes=rows, seconds_spent=5.0)
    services.panel_statistics_refresh()
    _vote_again(experts[1], clips[0])
    return clips, experts


def _vote_again(expert, clip):
    services.votes_bulk_create_simulated(
        votes=[(expert.pk, clip.pk, "C")], seconds_spent=5.0
    )


def _admin_client(username="boss"):
    client = Client()
    client.force_login(services.admin_create(username=username, password="pw-123456"))
    return client


def _run(kwargs):
    """The task as a worker runs it (RecordedTask: heartbeat, then the body)."""
    return tasks.panel_statistics_refresh(**kwargs)


def _heartbeat(*, beat_at):
    return Heartbeat.objects.create(
        subject=panel_claim.REFRESH_SUBJECT,
        task="workers.tasks.panel_statistics_refresh",
        host="another-machine",
        pid=1,
        started_at=beat_at,
        beat_at=beat_at,
    )


@pytest.mark.django_db
def test_many_views_of_a_stale_dashboard_queue_one_refresh_then_again_after_it(
    stale_large_panel, sent
):
    clips, experts = stale_large_panel
    client = _admin_client()
    for _ in range(10):
        response = client.get(reverse("panel_dashboard"))
        assert response.status_code == 200
        assert response.context["refreshing"]
    assert len(sent) == 1
    _run(sent[0])
    assert PanelStatisticsClaim.objects.get(key="panel").token == ""
    assert not client.get(reverse("panel_dashboard")).context["refreshing"]
    _vote_again(experts[1], clips[1])
    for _ in range(5):
        client.get(reverse("panel_dashboard"))
    assert len(sent) == 2


@pytest.mark.django_db
def test_beat_and_stale_messages_do_not_run_beside_the_claimed_refresh(
    stale_large_panel, sent
):
    assert services.panel_statistics_refresh_queue()
    beat = _run({})
    assert beat == {"skipped": "another refresh is queued or running"}
    stale = _run({"claim": "0" * 32})
    assert "skipped" in stale
    done = _run(sent[0])
    assert done["n_votes"] == 4
    # Nothing queued or running now: beat's own run goes ahead.
    assert "skipped" not in _run({})


@pytest.mark.django_db
def test_a_refresh_that_never_started_stops_blocking_after_the_claim_seconds(
    stale_large_panel, sent, settings
):
    assert services.panel_statistics_refresh_queue()
    assert not services.panel_statistics_refresh_queue()
    old = timezone.now() - timedelta(seconds=settings.PANEL_STATISTICS_CLAIM_SECONDS)
    PanelStatisticsClaim.objects.filter(key="panel").update(
        claimed_at=old - timedelta(seconds=1)
    )
    assert services.panel_statistics_refresh_queue()
    assert len(sent) == 2
    # The first message, delivered late, no longer holds the claim: it does nothing.
    assert "skipped" in _run(sent[0])


@pytest.mark.django_db
def test_a_long_refresh_with_a_live_heartbeat_keeps_its_claim(
    stale_large_panel, sent, settings
):
    assert services.panel_statistics_refresh_queue()
    old = timezone.now() - timedelta(seconds=settings.PANEL_STATISTICS_CLAIM_SECONDS)
    PanelStatisticsClaim.objects.filter(key="panel").update(claimed_at=old)
    _heartbeat(beat_at=timezone.now())
    assert not services.panel_statistics_refresh_queue()
    assert len(sent) == 1


@pytest.mark.django_db
def test_the_reaper_releases_the_claim_of_a_refresh_whose_worker_died(
    stale_large_panel, sent, settings
):
    assert services.panel_statistics_refresh_queue()
    dead = timezone.now() - timedelta(
        seconds=settings.JOB_HEARTBEAT_TIMEOUT_SECONDS + 5
    )
    _heartbeat(beat_at=dead)
    assert not services.panel_statistics_refresh_queue()
    reaped = jobs_reap()
    assert [r["subject"] for r in reaped] == [panel_claim.REFRESH_SUBJECT]
    assert "Claim released" in reaped[0]["outcome"]
    assert services.panel_statistics_refresh_queue()
    assert len(sent) == 2


@pytest.mark.django_db
def test_a_refused_message_gives_the_claim_back(stale_large_panel, monkeypatch):
    def refuse(*, name, kwargs, on_unreachable=None, queue=None):
        on_unreachable("the task queue is unreachable")

    monkeypatch.setattr(panel_claim, "task_send", refuse)
    assert services.panel_statistics_refresh_queue()
    assert PanelStatisticsClaim.objects.get(key="panel").token == ""


N_VIEWS = 16


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_views_of_a_stale_dashboard_queue_exactly_one_refresh(
    stale_large_panel, sent
):
    clients = [_admin_client(f"boss{i}") for i in range(N_VIEWS)]
    start = threading.Barrier(N_VIEWS)
    statuses: list[int] = []
    failures: list[str] = []

    def view(client):
        try:
            start.wait(timeout=60)
            statuses.append(client.get(reverse("panel_dashboard")).status_code)
        except Exception as exc:  # surfaced by the assertion below
            failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=view, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert statuses == [200] * N_VIEWS
    assert len(sent) == 1
