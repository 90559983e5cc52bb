"""The registry's endpoints: administrators only (experts and anonymous visitors
refused, every one of them), working start/cancel/retry/promote/rollback, and no
expert-facing response that ever contains a prediction."""

from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import services as annotation_services
from jobs.models import Heartbeat
from jobs.reaper import jobs_reap
from registry import selectors, services
from registry.models import Prediction, RunStatus, TrainingRun
from tests.annotation.conftest import session_client
from tests.factories import ExpertFactory
from tests.registry.test_versions import _version

ENDPOINTS = [
    ("get", "api-registry-profiles", {}),
    ("get", "api-registry-runs", {}),
    ("post", "api-registry-runs", {}),
    ("get", "api-registry-run", {"run_id": 1}),
    ("post", "api-registry-run-cancel", {"run_id": 1}),
    ("post", "api-registry-run-retry", {"run_id": 1}),
    ("get", "api-registry-versions", {}),
    ("post", "api-registry-rollback", {}),
    ("get", "api-registry-version", {"version_id": 1}),
    ("post", "api-registry-promote", {"version_id": 1}),
    ("get", "api-registry-predictions", {"version_id": 1}),
    ("get", "api-registry-snapshots", {}),
    ("get", "registry_home", {}),
    ("post", "registry_run_start", {}),
    ("get", "registry_run", {"run_id": 1}),
    ("post", "registry_run_cancel", {"run_id": 1}),
    ("post", "registry_run_retry", {"run_id": 1}),
    ("get", "registry_compare", {}),
    ("post", "registry_rollback", {}),
    ("get", "registry_version", {"version_id": 1}),
    ("post", "registry_promote", {"version_id": 1}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("method,name,kwargs", ENDPOINTS)
def test_experts_and_anonymous_visitors_are_refused_everywhere(
    method, name, kwargs, expert_api
):
    url = reverse(name, kwargs=kwargs)
    anonymous = getattr(session_client(), method)(url)
    expert = getattr(expert_api, method)(url)
    assert expert.status_code == 403, (url, expert.status_code)
    if name.startswith("api-"):
        assert anonymous.status_code in (401, 403)
    else:
        assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method,name,kwargs", ENDPOINTS)
def test_administrators_get_an_answer_never_a_server_error(
    method, name, kwargs, admin_api
):
    response = getattr(admin_api, method)(reverse(name, kwargs=kwargs))
    assert response.status_code in (200, 302, 400, 404, 409), response.status_code


@pytest.mark.django_db(transaction=True)
def test_an_admin_starts_cancels_and_retries_a_run_through_the_api(voted, admin_api):
    bad = admin_api.post(
        reverse("api-registry-runs"), {"profile": "tiny", "k": 1}, format="json"
    )
    assert bad.status_code == 400 and "k" in bad.json()["detail"]
    wrong_queue = admin_api.post(
        reverse("api-registry-runs"),
        {"profile": "timesformer", "queue": "cpu"},
        format="json",
    )
    assert wrong_queue.status_code == 400
    assert "runs on gpu" in wrong_queue.json()["detail"]
    response = admin_api.post(
        reverse("api-registry-runs"),
        {"profile": "tiny", "epochs": 3, "seed": 7},
        format="json",
    )
    assert response.status_code == 201, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.config["optim"]["epochs"] == 3 and run.config["runtime"]["seed"] == 7
    assert run.created_by.is_staff or run.created_by.groups.exists()
    detail = admin_api.get(reverse("api-registry-run", kwargs={"run_id": run.pk}))
    assert detail.json()["status"] == "queued" and detail.json()["folds"] == []
    cancel = admin_api.post(reverse("api-registry-run-cancel", args=[run.pk]))
    assert cancel.json()["status"] == "cancelled"
    again = admin_api.post(reverse("api-registry-run-cancel", args=[run.pk]))
    assert again.status_code == 409
    retry = admin_api.post(reverse("api-registry-run-retry", args=[run.pk]))
    assert retry.status_code == 201 and retry.json()["retry_of"] == run.pk


@pytest.mark.django_db
def test_the_pages_start_a_run_and_promote_and_roll_back(voted, admin_user):
    client = session_client(admin_user)
    client.handler.enforce_csrf_checks = False
    page = client.get(reverse("registry_home"))
    assert page.status_code == 200 and b"Start a training run" in page.content
    response = client.post(reverse("registry_run_start"), {"profile": "tiny"})
    run = TrainingRun.objects.get()
    assert response["Location"] == reverse("registry_run", args=[run.pk])
    assert client.get(response["Location"]).status_code == 200
    refused = client.post(reverse("registry_run_start"), {"profile": "nope"})
    assert refused.status_code == 302 and TrainingRun.objects.count() == 1

    v1, v2 = _version(1, 0.05, 0.01), _version(2, 0.049, 0.01)
    services.version_auto_decide(version=v1)
    services.version_auto_decide(version=v2)  # held: no paired comparison
    client.post(reverse("registry_promote", args=[v2.pk]))
    assert selectors.version_active() == v2
    client.post(reverse("registry_rollback"))
    assert selectors.version_active() == v1
    compare = client.get(reverse("registry_compare"), {"v": [v1.pk, v2.pk, "x"]})
    assert compare.status_code == 200 and b"v2" in compare.content
    assert client.get(reverse("registry_version", args=[v1.pk])).status_code == 200


@pytest.mark.django_db
def test_no_expert_facing_response_contains_a_prediction(voted):
    clips, _ = voted
    version = _version(1, 0.05, 0.01)
    services.version_auto_decide(version=version)
    marker = 0.1234567
    services.predictions_store(
        version=version,
        rows=[(c.pk, [marker, 0.2, 0.2, 0.2, 1 - marker - 0.6], 0) for c in clips],
        source="oof",
    )
    assert Prediction.objects.count() == len(clips)
    expert = ExpertFactory()
    client = session_client(expert)
    bodies = []
    for url in ["/", reverse("grade"), reverse("api-votes")]:
        bodies.append(client.get(url).content)
    bodies.append(client.post(reverse("api-clip-next")).content)
    bodies.append(client.get(reverse("api-clip-list")).content)
    bodies.append(client.get(reverse("api-clip-detail", args=[clips[0].pk])).content)
    vote = annotation_services.vote_create(expert=expert, clip=clips[0], grade="B")
    bodies.append(client.get(reverse("api-vote-detail", args=[vote.pk])).content)
    posted = client.post(
        reverse("api-votes"), {"clip": clips[1].pk, "grade": "C"}, format="json"
    )
    bodies.append(posted.content)
    for body in bodies:
        text = body.decode()
        assert "0.123" not in text and "predict" not in text.lower()
        assert "model_version" not in text and "registry" not in text


@pytest.mark.django_db
def test_predictions_are_listed_for_admins_by_version_and_clip(voted, admin_api):
    clips, _ = voted
    version = _version(1, 0.05, 0.01)
    services.predictions_store(
        version=version,
        rows=[(clips[0].pk, [0.1, 0.2, 0.3, 0.2, 0.2], 1)],
        source="oof",
    )
    url = reverse("api-registry-predictions", args=[version.pk])
    rows = admin_api.get(url, {"clip": clips[0].pk}).json()["results"]
    assert rows == [
        {
            "clip": clips[0].pk,
            "probs": [0.1, 0.2, 0.3, 0.2, 0.2],
            "source": "oof",
            "fold": 1,
            "created_at": rows[0]["created_at"],
        }
    ]
    assert admin_api.get(url, {"clip": "x"}).status_code == 400


def _admin_pages(admin_user):
    client = session_client(admin_user)
    client.handler.enforce_csrf_checks = False
    return client


@pytest.mark.django_db
def test_the_compare_page_names_each_versions_profile_and_its_mode_accuracy(
    admin_user,
):
    from modeling.metrics import metrics_all

    v1, v2 = _version(1, 0.05, 0.01), _version(2, 0.04, 0.01)
    # The keys a registered version really carries (its runs' metrics_all).
    keys = metrics_all(np.full((2, 5), 0.2), np.eye(5)[:2]).keys()
    for version, accuracy in ((v1, 0.61), (v2, 0.7)):
        mean = {k: 0.5 for k in keys} | {"mode_accuracy": accuracy}
        version.metrics = {"mean": mean, "std": {k: 0.01 for k in keys}}
        version.save()
    page = _admin_pages(admin_user).get(
        reverse("registry_compare"), {"v": [v1.pk, v2.pk]}
    )
    html = page.content.decode()
    header = html[html.index("<thead>") : html.index("</thead>")]
    assert header.count(" tiny") == 2 and "clinic network" in header
    assert "mode_accuracy</td><td>0.6100 ± 0.0100</td><td>0.7000 ± 0.0100" in html
    table = html[html.index("<tbody>") : html.index("</tbody>")]
    assert "–" not in table


@pytest.mark.django_db
def test_a_fold_whose_worker_was_lost_reads_failed_with_why_not_cancelled(
    admin_user, admin_api
):
    run = services.training_run_create(profile="tiny")
    services.run_mark_running(run_id=run.pk, snapshot=None, n_folds=2)
    assert services.fold_claim(run_id=run.pk, index=0, attempt=1, host="w1@test")
    stale = timezone.now() - timedelta(minutes=10)
    Heartbeat.objects.create(
        subject=f"fold:{run.pk}:0",
        host="gpu-box",
        worker="w1@test",
        pid=1,
        started_at=stale,
        beat_at=stale,
    )
    reaped = jobs_reap(timeout_s=60)
    assert [(r["subject"], r["outcome"]) for r in reaped] == [
        (f"fold:{run.pk}:0", "the run failed")
    ]
    run.refresh_from_db()
    folds = {f.index: f for f in run.folds.all()}
    assert run.status == RunStatus.FAILED and "stopped reporting" in run.error_message
    assert folds[0].status == RunStatus.FAILED
    assert folds[0].error_message in run.error_message
    assert "w1@test" in folds[0].error_message
    # Folds that never started were cancelled with the run.
    assert {folds[1].status, folds[-1].status} == {RunStatus.CANCELLED}

    html = _admin_pages(admin_user).get(reverse("registry_run", args=[run.pk]))
    row = html.content.decode().split('data-fold="0"')[1].split("</tr>")[0]
    assert "Failed" in row and "Cancelled" not in row
    assert "stopped reporting" in row and "w1@test" in row
    api = admin_api.get(reverse("api-registry-run", args=[run.pk])).json()
    fold0 = next(f for f in api["folds"] if f["index"] == 0)
    assert (api["status_display"], fold0["status_display"]) == ("Failed", "Failed")


@pytest.mark.django_db
def test_promote_and_rollback_forms_ask_first_naming_the_versions(admin_user):
    client = _admin_pages(admin_user)
    v1, v2 = _version(1, 0.05, 0.01), _version(2, 0.049, 0.01)
    services.version_auto_decide(version=v1)
    services.version_auto_decide(version=v2)  # held
    home = client.get(reverse("registry_home")).content.decode()
    assert 'data-confirm="Promote v2 (tiny profile' in home
    assert "It replaces v1 as the active version" in home
    assert 'id="rollback"' not in home and "no earlier one to roll back" in home
    version_page = client.get(reverse("registry_version", args=[v2.pk]))
    assert 'data-confirm="Promote v2' in version_page.content.decode()

    promoted = client.post(reverse("registry_promote", args=[v2.pk]), follow=True)
    assert "Promoted: v2 is the active version now (was v1)" in (
        promoted.content.decode()
    )
    home = client.get(reverse("registry_home")).content.decode()
    assert 'data-confirm="Roll back from v2 to v1?' in home
    assert ">Roll back to v1</button>" in home
    rolled = client.post(reverse("registry_rollback"), follow=True)
    assert "Rolled back: v1 is the active version again." in rolled.content.decode()
