"""The web side says when no worker serves a queue, from the workers' own
heartbeats (no task needed, so it works precisely when no worker runs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import WorkerPresence
from jobs.selectors import silent_queues
from registry.models import TrainingRun
from tests.annotation.conftest import session_client
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db


def worker(name: str, queues: list[str], *, age_s: float = 0, stopped=False):
    seen = timezone.now() - timedelta(seconds=age_s)
    return WorkerPresence.objects.create(
        name=name,
        queues=queues,
        host="box",
        pid=1,
        started_at=seen,
        seen_at=seen,
        stopped_at=seen if stopped else None,
    )


def test_cpu_is_silent_until_a_worker_reports_and_again_once_it_is_gone():
    assert silent_queues() == [{"queue": "cpu", "last_seen": None}]
    w = worker("w1@box", ["cpu"])
    assert silent_queues() == []
    WorkerPresence.objects.filter(pk=w.pk).update(
        seen_at=timezone.now() - timedelta(seconds=61)
    )
    (silent,) = silent_queues()
    assert silent["queue"] == "cpu" and silent["last_seen"] is not None


def test_a_gpu_worker_that_went_away_and_a_stopped_worker_are_named():
    worker("cpu@box", ["cpu"])
    worker("gpu@box", ["gpu"], age_s=600)
    assert [q["queue"] for q in silent_queues()] == ["gpu"]
    worker("cpu2@box", ["cpu"], stopped=True)
    assert [q["queue"] for q in silent_queues()] == ["gpu"]  # cpu@box still serves
    WorkerPresence.objects.filter(name="cpu@box").update(stopped_at=timezone.now())
    assert [q["queue"] for q in silent_queues()] == ["cpu", "gpu"]


def test_the_admin_home_the_registry_and_a_waiting_run_show_the_warning():
    client = session_client(AdminFactory())
    run = TrainingRun.objects.create(profile="clinic", queue="gpu")
    worker("cpu@box", ["cpu"])
    pages = {
        "admin": client.get(reverse("admin_home")).content.decode(),
        "registry": client.get(reverse("registry_home")).content.decode(),
        "run": client.get(reverse("registry_run", args=[run.pk])).content.decode(),
    }
    assert 'data-silent-queue="cpu"' not in pages["admin"]
    for name in ("registry", "run"):
        assert 'data-silent-queue="gpu"' in pages[name], name
        assert (
            "No worker has reported on the <strong>gpu</strong> queue yet"
            in (pages[name])
        )
    WorkerPresence.objects.all().delete()
    home = client.get(reverse("admin_home")).content.decode()
    assert 'data-silent-queue="cpu"' in home
