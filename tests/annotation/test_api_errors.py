"""Bad input gets a 4xx with a JSON message a person can act on, never a 500."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Vote
from tests.annotation.conftest import CSRF_TOKEN, session_client
from tests.factories import ClipFactory, handle

pytestmark = pytest.mark.django_db


def test_grade_f_is_400_naming_the_allowed_grades(expert_client, clips):
    response = expert_client.post(
        "/api/votes/", {"clip": clips[0].pk, "grade": "F"}, format="json"
    )
    assert response.status_code == 400
    assert "A, B, C, D, E" in response.json()["detail"]
    assert "grade" in response.json()["errors"]
    assert not Vote.objects.exists()


def test_numeric_grade_is_accepted(expert, expert_client, offered_clips):
    response = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[0]), "grade": 2},
        format="json",
    )
    assert response.status_code == 201 and response.json()["grade"] == "B"


def test_unknown_clip_is_404(expert_client):
    response = expert_client.post(
        "/api/votes/", {"clip": 999999, "grade": "A"}, format="json"
    )
    # A database id is not a handle: the answer is the one for an unknown handle,
    # whether or not a clip has that id (it tells nothing about clips).
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No clip of yours has this handle")
    real = ClipFactory()
    same = expert_client.post(
        "/api/votes/", {"clip": real.pk, "grade": "A"}, format="json"
    )
    assert (same.status_code, same.json()) == (404, response.json())


def test_malformed_json_is_400(expert_client):
    response = expert_client.post(
        "/api/votes/", data='{"clip": 1, "grade": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_missing_fields_are_400_naming_them(expert_client):
    response = expert_client.post("/api/votes/", {}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "clip" in body["errors"] and "grade" in body["errors"]


def test_missing_csrf_token_is_403_and_nothing_is_stored(expert, clips):
    client = session_client(expert)
    client.credentials()  # drop the X-CSRFToken header the helper sends
    client.defaults.pop("HTTP_X_CSRFTOKEN", None)
    response = client.post(
        "/api/votes/", {"clip": clips[0].pk, "grade": "A"}, format="json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Vote.objects.exists()


def test_voting_for_another_expert_is_refused(expert, other_expert, clips):
    client = session_client(expert)
    response = client.post(
        "/api/votes/",
        {"clip": clips[0].pk, "grade": "A", "expert": other_expert.pk},
        format="json",
    )
    assert response.status_code == 400
    assert "signed-in expert" in response.json()["detail"]
    assert not Vote.objects.filter(expert=other_expert).exists()


def test_duplicate_vote_is_409(expert, expert_client, offered_clips):
    body = {"clip": handle(expert, offered_clips[0]), "grade": "A"}
    assert expert_client.post("/api/votes/", body, format="json").status_code == 201
    response = expert_client.post("/api/votes/", body, format="json")
    assert response.status_code == 409
    assert "already graded" in response.json()["detail"]


def test_negative_seconds_spent_is_400(expert_client, clips):
    response = expert_client.post(
        "/api/votes/",
        {"clip": clips[0].pk, "grade": "A", "seconds_spent": -3},
        format="json",
    )
    assert response.status_code == 400


def test_vote_on_withdrawn_clip_is_409(expert, expert_client):
    from tests.factories import offer

    clip = ClipFactory()
    offer(expert, [clip])
    clip.is_active = False
    clip.save(update_fields=["is_active"])
    response = expert_client.post(
        "/api/votes/", {"clip": handle(expert, clip), "grade": "A"}, format="json"
    )
    assert response.status_code == 409


def test_undo_after_window_is_409_with_the_window(
    expert, expert_client, offered_clips, settings
):
    created = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[0]), "grade": "A"},
        format="json",
    ).json()
    Vote.objects.filter(clip=offered_clips[0]).update(
        created_at=timezone.now() - timedelta(seconds=settings.VOTE_UNDO_SECONDS + 5)
    )
    response = expert_client.patch(created["change_url"], {"grade": "B"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"The undo window of {settings.VOTE_UNDO_SECONDS} s has passed."
    )


def test_undo_within_window_changes_the_stored_vote(
    expert, expert_client, offered_clips
):
    created = expert_client.post(
        "/api/votes/",
        {"clip": handle(expert, offered_clips[0]), "grade": "A"},
        format="json",
    ).json()
    assert set(created) >= {"id", "clip", "grade", "undo_until", "change_url"}
    response = expert_client.patch(created["change_url"], {"grade": "e"}, format="json")
    assert response.status_code == 200 and response.json()["grade"] == "E"
    assert Vote.objects.get(clip=offered_clips[0]).grade == "E"


def test_bad_next_clip_parameters_are_400(expert_client):
    response = expert_client.post("/api/clips/next/?count=99")
    assert response.status_code == 400 and "count" in response.json()["detail"]


def test_unknown_api_path_is_json_404(expert_client):
    response = expert_client.get("/api/nope/")
    assert response.status_code == 404 and "/api/docs/" in response.json()["detail"]


def test_wrong_method_is_405_json(expert_client):
    response = expert_client.delete("/api/votes/")
    assert response.status_code == 405 and response.json()["detail"]


def test_csrf_token_constant_is_what_the_client_sends():
    assert len(CSRF_TOKEN) == 32


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        "A",
        None,
        {"clip": None, "grade": "A"},
        {"clip": "one", "grade": "A"},
        {"clip": 10**30, "grade": "A"},
        {"clip": 1, "grade": None},
        {"clip": 1, "grade": ["A"]},
        {"clip": 1, "grade": "A", "seconds_spent": "NaN"},
        '{"clip": 1, "grade": "A", "seconds_spent": 1e400}',
        '{"clip": 1, "grade": "A", "seconds_spent": NaN}',
    ],
)
def test_odd_vote_payloads_are_4xx_json(expert_client, clips, body):
    if isinstance(body, str) and body.startswith("{"):
        response = expert_client.post(
            "/api/votes/", data=body, content_type="application/json"
        )
    else:
        response = expert_client.post("/api/votes/", body, format="json")
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["detail"]


@pytest.mark.parametrize("method", ["get", "patch"])
def test_out_of_range_vote_id_is_4xx(expert_client, method):
    response = getattr(expert_client, method)(
        f"/api/votes/{10**30}/", {"grade": "A"}, format="json"
    )
    assert 400 <= response.status_code < 500
    assert response.json()["detail"]


def test_out_of_range_clip_id_is_4xx(expert_client):
    response = expert_client.get(f"/api/clips/{10**30}/")
    assert 400 <= response.status_code < 500


def test_unknown_api_path_with_a_newline_is_json_404(expert_client):
    # Found by the schema fuzzer: "." does not match a newline, so such a path
    # fell through to the HTML 404 page.
    for path in ["/api/nope%0A/", "/api/registry/versions/%0A/predictions/"]:
        response = expert_client.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json", path


def test_a_token_post_to_an_unknown_api_path_is_json_404(expert):
    # Found by the schema fuzzer: without a CSRF cookie the plain 404 view gave
    # the browser's CSRF failure page (HTML 403).
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=expert).key}"
    )
    response = client.post("/api/registry/runs/-1/cancel/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_a_clip_reference_of_unicode_digits_is_a_404_not_a_500(expert_client):
    # Found by the schema fuzzer: "²".isdigit() is true, int("²") fails.
    for clip in ["²", "١٢", "0", "99999999999999999999"]:
        response = expert_client.post(
            "/api/votes/", {"clip": clip, "grade": "A"}, format="json"
        )
        assert response.status_code in (400, 404), (clip, response.content)
        assert response.json()["detail"]
