"""The admins' operations page: the Celery queues, the workers with their last
report, the tasks running now and the jobs whose worker died (what Flower would
show, from the broker and the liveness tables, behind the site's own sign-in)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation import roles
from operations import monitoring

admin_required = roles.admin_page_required("The operations page is for administrators.")


@require_GET
@admin_required
def operations_status(request: HttpRequest) -> HttpResponse:
    workers = monitoring.workers()  # read once: the queues come from it too
    names = monitoring.queue_names(workers)
    lengths = monitoring.queue_lengths(names)
    queues = [
        {
            "name": name,
            "waiting": None if lengths is None else lengths.get(name, 0),
            "workers_up": sum(
                1 for w in workers if w["state"] == "up" and name in w["queues"]
            ),
        }
        for name in names
    ]
    return render(
        request,
        "operations/status.html",
        {
            "broker_up": lengths is not None,
            "queues": queues,
            "workers": workers,
            "running": monitoring.running_tasks(),
            "lost": monitoring.recent_lost(),
        },
    )
