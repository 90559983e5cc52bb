"""Round trips per grading request are bounded, so a regression (an N+1, a lost
memo, a per-request cleanup) fails here instead of only in the load benchmark.

Counts include the two SAVEPOINT statements the test transaction adds around the
vote's atomic block (in production that block is BEGIN/COMMIT on the connection).
"""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.selectors import queue as queue_selectors
from tests.factories import ClipFactory

pytestmark = pytest.mark.django_db

# token auth + roles (1), held leases, ranked fresh clips, lease upsert, progress
NEXT_MAX_QUERIES = 5
# token auth + roles, the clip with the expert's lease of it (one statement), one
# statement taking the lease and writing the vote and its history (PostgreSQL;
# SQLite: three), progress, 2 savepoints
VOTE_MAX_QUERIES = 6 if connection.vendor == "postgresql" else 8


@pytest.fixture
def token_client(expert):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=expert)}")
    return client


@pytest.fixture
def queue(settings, monkeypatch):
    settings.REPEAT_SHARE = 0.0
    # The occasional sweep of expired leases is one DELETE more; off here so the
    # budget is exact (test_queue checks the sweep itself).
    monkeypatch.setattr(queue_selectors, "_EXPIRED_LEASE_SWEEP_SHARE", 0.0)
    return ClipFactory.create_batch(6)


def _next_then_vote(client, max_next, max_vote, django_assert_max_num_queries):
    with django_assert_max_num_queries(max_next):
        response = client.post("/api/clips/next/?tab=t")
    assert response.status_code == 200, response.content
    clip_id = response.json()["clips"][0]["id"]
    with django_assert_max_num_queries(max_vote):
        response = client.post(
            "/api/votes/", {"clip": clip_id, "grade": "B"}, format="json"
        )
    assert response.status_code == 201, response.content
    return clip_id


def test_next_clip_and_vote_with_a_token_stay_within_their_query_budget(
    token_client, queue, django_assert_max_num_queries
):
    token_client.post("/api/clips/next/?tab=t")  # settings cache warmed by a vote
    graded = [
        _next_then_vote(
            token_client,
            NEXT_MAX_QUERIES,
            VOTE_MAX_QUERIES + (1 if i == 0 else 0),  # first vote loads settings
            django_assert_max_num_queries,
        )
        for i in range(3)
    ]
    assert len(set(graded)) == 3


def test_session_with_the_role_backend_reads_roles_with_the_user(
    expert, queue, settings, django_assert_max_num_queries
):
    settings.AUTHENTICATION_BACKENDS = ["annotation.permissions.RoleModelBackend"]
    client = APIClient()
    client.force_login(expert)
    # session row + user with roles replace the token row
    _next_then_vote(
        client,
        NEXT_MAX_QUERIES + 1,
        VOTE_MAX_QUERIES + 2,  # + session row, + first load of the site settings
        django_assert_max_num_queries,
    )


def test_roles_read_with_the_token_are_not_kept_between_requests(
    expert, token_client, queue
):
    assert token_client.post("/api/clips/next/").status_code == 200
    expert.groups.remove(Group.objects.get(name="experts"))
    response = token_client.post("/api/clips/next/")
    assert response.status_code == 403
    assert "experts group" in response.json()["detail"]


def test_an_admin_token_is_refused_the_queue_but_reads_distributions(admin_user):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user)}"
    )
    assert client.post("/api/clips/next/").status_code == 403
    assert client.get("/api/distributions/").status_code == 200


def test_an_unknown_token_is_refused(queue):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.post("/api/clips/next/")
    # 401 with the Token challenge (the token scheme is asked first)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Invalid token."
