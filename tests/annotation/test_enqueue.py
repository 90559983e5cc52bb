"""Work is sent to the workers by task name, after the commit, never by import."""

from types import SimpleNamespace

import pytest

from annotation import services
from annotation.models import Job
from annotation.services import enqueue

pytestmark = pytest.mark.django_db


class Broker:
    conf = SimpleNamespace(task_always_eager=False)

    def __init__(self, error: Exception | None = None):
        self.sent: list[tuple[str, dict]] = []
        self.error = error

    def send_task(self, name, *, kwargs, queue=None):
        if self.error:
            raise self.error
        self.sent.append((name, kwargs))


def test_a_task_is_sent_by_name_only_after_the_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    broker = Broker()
    monkeypatch.setattr(enqueue, "current_app", broker)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.panel_snapshot_request()
    assert broker.sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert broker.sent == [("workers.tasks.panel_snapshot", {"job_id": job.pk})]


def test_a_broker_that_is_down_fails_the_job_with_a_clear_message(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(enqueue, "current_app", Broker(ConnectionError("refused")))
    with django_capture_on_commit_callbacks(execute=True):
        job = services.panel_snapshot_request()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "task queue is unreachable" in job.error_message


def test_an_unknown_task_name_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown task"):
        services.task_send(name="workers.tasks.nope", kwargs={})
