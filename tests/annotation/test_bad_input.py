"""Every bad request body or query is a 4xx with a clear message, never a 500, with
DEBUG off as in production (issue "hardening", part 1)."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from annotation import errors, services
from annotation.models import ExpertProfile, Patient, Recording
from tests.annotation.conftest import session_client

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]


def _json(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content
    return response.json()


def test_deeply_nested_json_to_the_token_endpoint_is_400_for_anyone():
    client = Client(raise_request_exception=False)
    response = client.post("/api/auth/token/", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in _json(response)["detail"]


def test_deeply_nested_json_to_a_vote_is_400(expert):
    client = session_client(expert)
    client.raise_request_exception = False
    response = client.post("/api/votes/", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in _json(response)["detail"]


def test_a_json_body_over_the_limit_is_413(expert, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    client = session_client(expert)
    client.raise_request_exception = False
    body = json.dumps({"clip": 1, "grade": "A", "pad": "x" * 5_000})
    response = client.post("/api/votes/", body, content_type="application/json")
    assert response.status_code == 413
    assert "too large" in _json(response)["detail"]


def test_too_many_form_fields_or_query_values_are_400(admin_user, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
    client = Client(raise_request_exception=False)
    fields = {f"f{i}": "x" for i in range(80)}
    response = client.post("/api/auth/token/", fields)
    assert response.status_code == 400
    assert "too many fields" in _json(response)["detail"].lower()
    admin = session_client(admin_user)
    admin.raise_request_exception = False
    query = "&".join(f"clip={i}" for i in range(1, 80))
    response = admin.get(f"/api/distributions/?{query}")
    assert response.status_code == 400
    assert "too many fields" in _json(response)["detail"].lower()


def test_a_clip_id_beyond_any_integer_column_is_400(admin_user):
    client = session_client(admin_user)
    client.raise_request_exception = False
    response = client.get("/api/distributions/?clip=99999999999999999999")
    assert response.status_code == 400
    assert "clip" in _json(response)["errors"]


def test_a_page_post_over_the_limit_is_a_413_page(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    client = Client(raise_request_exception=False)
    response = client.post(
        "/login/", {"username": "u", "password": "p" * 5_000}, follow=False
    )
    assert response.status_code == 413
    assert "too large" in response.content.decode()


@pytest.fixture
def recording(db):
    patient = Patient.objects.create(code="P-BAD")
    return Recording.objects.create(
        patient=patient, width=640, height=480, status=Recording.Status.UPLOADED
    )


@pytest.mark.parametrize(
    "targets",
    ["[[NaN, NaN]]", "[[1e999, 1]]", "[[Infinity, 2]]", DEEP, "[[" * 600 + "]]" * 600],
)
def test_impossible_target_points_are_refused_with_a_message(
    admin_user, recording, targets
):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.post(
        reverse("recording_targets", args=[recording.pk]), {"targets": targets}
    )
    assert response.status_code == 302  # back to the page, with the reason
    page = client.get(response["Location"]).content.decode()
    assert "targets" in page.lower() and "not" in page.lower()
    recording.refresh_from_db()
    assert recording.targets == [] and recording.status == Recording.Status.UPLOADED


def test_a_csv_row_with_extra_columns_is_named_not_a_crash():
    text = "username,email,code,years_experience\nann,ann@example.org,EXP-1,3,extra\n"
    with pytest.raises(errors.InvalidInput) as info:
        services.experts_import_csv(text=text)
    assert "line 2" in str(info.value) and "columns" in str(info.value)
    assert not ExpertProfile.objects.exists()


def test_page_sizes_are_capped_and_a_malformed_limit_means_the_default(admin_user):
    from tests.factories import ClipFactory

    ClipFactory.create_batch(3)
    client = session_client(admin_user)
    client.raise_request_exception = False
    from annotation.pagination import Pagination

    assert Pagination.max_limit == 1000
    for limit in ("1000000", "1e20", "-5", "abc"):
        response = client.get(f"/api/distributions/?limit={limit}")
        assert response.status_code == 200, (limit, response.content)
        assert len(_json(response)["results"]) == 3


def test_seconds_spent_beyond_a_day_is_refused(expert):
    from tests.factories import ClipFactory, handle

    clip = ClipFactory()
    client = session_client(expert)
    response = client.post(
        "/api/votes/",
        {"clip": handle(expert, clip), "grade": "A", "seconds_spent": 1e308},
        format="json",
    )
    assert response.status_code == 400
    assert "seconds_spent" in _json(response)["detail"]


def test_worker_error_messages_never_show_server_paths(settings, recording):
    settings.MEDIA_ROOT = "/srv/spermgrade/media"
    services.recording_mark_failed(
        recording_id=recording.pk,
        message="Invalid data found when processing input: "
        "'/srv/spermgrade/media/recordings/ab12.mp4' (also /tmp/x/y.bin)",
    )
    recording.refresh_from_db()
    assert "/srv" not in recording.error_message
    assert "/tmp" not in recording.error_message
    assert "Invalid data found" in recording.error_message


def test_database_errors_are_not_echoed_to_clients():
    from django.db import DataError

    from annotation.apis import exception_handler

    response = exception_handler(
        DataError('value too long for type character varying(1) in "annotation_vote"'),
        {},
    )
    assert response.status_code == 400
    assert "annotation_vote" not in response.data["detail"]


def test_a_clip_that_cannot_be_served_is_withdrawn_and_the_queue_goes_on(
    expert, settings
):
    """A stored value no check caught (a track of text): the expert still gets a
    clip (200, never a 500 on every retry), the broken clip is withdrawn with the
    reason for admins, its votes kept."""
    from annotation.models import Clip, ClipLease
    from tests.factories import ClipFactory

    settings.REPEAT_SHARE = 0.0
    broken, good = ClipFactory.create_batch(2)
    Clip.objects.filter(pk=broken.pk).update(track="not a track")
    client = session_client(expert)
    served = []
    for _ in range(2):
        response = client.post("/api/clips/next/?count=2&tab=t1")
        assert response.status_code == 200, response.content
        served += response.json()["clips"]
    assert len(served) >= 1
    broken.refresh_from_db()
    assert not broken.is_active
    assert broken.review_reason.startswith("withdrawn automatically: it could not")
    assert not ClipLease.objects.filter(clip=broken).exists()
    assert Clip.objects.get(pk=good.pk).is_active


@pytest.mark.parametrize(
    "who",
    ["anonymous", "admin"],
)
def test_a_lone_surrogate_in_json_is_400_everywhere(who, admin_user):
    """ "\\ud800" decodes to a string no database or UTF-8 answer can hold: the
    token endpoint, a clip review and a run start answer 400, never 500."""
    from rest_framework.test import APIClient

    from tests.factories import ClipFactory

    client = APIClient()
    body = '{"username": "x\\ud800", "password": "y"}'
    urls = [("/api/auth/token/", body)]
    if who == "admin":
        client.force_authenticate(admin_user)
        clip = ClipFactory()
        urls = [
            (
                f"/api/clips/{clip.pk}/review/",
                '{"decision": "reject", "reason": "bad \\udfff"}',
            ),
            ("/api/registry/runs/", '{"profile": "tiny\\ud83d"}'),
        ]
    for url, raw in urls:
        response = client.post(url, data=raw, content_type="application/json")
        assert response.status_code == 400, (url, response.content)
        assert "surrogate" in response.json()["detail"]


def test_a_database_outage_is_503_with_retry_after(expert, monkeypatch):
    from django.db import OperationalError

    from annotation import selectors

    def down(**kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(selectors, "clip_next_for_expert", down)
    monkeypatch.setattr(selectors, "site_settings", down)
    client = session_client(expert)
    api = client.post("/api/clips/next/")
    assert api.status_code == 503 and int(api["Retry-After"]) > 0
    assert "database cannot be reached" in api.json()["detail"]
    assert "Connection refused" not in api.content.decode()
    page = client.get("/grade/")
    assert page.status_code == 503 and int(page["Retry-After"]) > 0


def test_every_answer_carries_a_content_security_policy(client, expert):
    response = client.get("/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "camera=()" in response["Permissions-Policy"]
