"""Offered clips only: a vote needs a lease of the clip to that expert (live, or
lapsed and the clip still wanting votes); the next-clip call that leases is a
POST under CSRF; twenty tabs of one expert asking at once never share a clip."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from annotation import selectors
from annotation.models import ClipLease, Vote, VoteHistory
from tests.annotation.conftest import session_client
from tests.factories import ClipFactory, ExpertFactory, clip_id_of, offer

pytestmark = pytest.mark.django_db


def _vote(client, clip, grade="B"):
    """The signed-in expert's vote, naming the clip by its handle (their only way)."""
    from annotation.handles import presentation_handle

    expert_id = int(client.session["_auth_user_id"])
    ref = presentation_handle(expert_id=expert_id, clip_id=clip.pk, repeat=False)
    return client.post("/api/votes/", {"clip": ref, "grade": grade}, format="json")


def test_a_clip_never_offered_cannot_be_voted(expert_client, clips):
    response = _vote(expert_client, clips[0])
    assert response.status_code == 409
    assert "not handed to you" in response.json()["detail"]
    assert Vote.objects.count() == 0 and VoteHistory.objects.count() == 0


def test_an_offered_clip_is_voted_once_even_after_the_lease_lapsed(
    expert, expert_client, clips
):
    offered = expert_client.post("/api/clips/next/?count=1").json()["clips"]
    clip = next(c for c in clips if c.pk == clip_id_of(offered[0]["id"]))
    # The page went offline; its lease lapsed before the outbox sent the vote.
    ClipLease.objects.update(expires_at=timezone.now() - timedelta(minutes=30))
    assert _vote(expert_client, clip).status_code == 201
    again = _vote(expert_client, clip)  # the retry of a send whose answer was lost
    assert again.status_code == 409 and "already graded" in again.json()["detail"]
    assert Vote.objects.filter(expert=expert, clip=clip).count() == 1


def test_a_lapsed_lease_on_a_clip_that_has_all_its_votes_is_refused(
    expert, expert_client, clips, settings
):
    settings.VOTES_PER_CLIP = 2
    clip = clips[0]
    offer(expert, [clip])
    ClipLease.objects.update(expires_at=timezone.now() - timedelta(minutes=30))
    from annotation import services

    for _ in range(2):
        services.vote_create(expert=ExpertFactory(), clip=clip, grade="C")
    response = _vote(expert_client, clip)
    assert response.status_code == 409
    assert "all the votes it needs" in response.json()["detail"]
    assert not Vote.objects.filter(expert=expert).exists()


def test_a_live_lease_keeps_its_reserved_slot(expert, expert_client, clips, settings):
    settings.VOTES_PER_CLIP = 2
    clip = clips[0]
    offer(expert, [clip])
    from annotation import services

    for _ in range(2):
        services.vote_create(expert=ExpertFactory(), clip=clip, grade="C")
    assert _vote(expert_client, clip).status_code == 201


def test_next_clip_is_a_post_under_csrf(expert, clips):
    client = session_client(expert)
    assert client.get("/api/clips/next/").status_code == 405
    from rest_framework.test import APIClient

    foreign = APIClient(enforce_csrf_checks=True)
    foreign.force_login(expert)  # a session cookie, but no CSRF token
    response = foreign.post("/api/clips/next/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not ClipLease.objects.exists()
    assert client.post("/api/clips/next/").status_code == 200
    assert ClipLease.objects.filter(expert=expert).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_tabs_asking_at_once_never_share_a_clip(settings):
    settings.REPEAT_SHARE = 0.0
    ClipFactory.create_batch(30)
    expert = ExpertFactory()
    start = threading.Barrier(20)
    got: dict[int, list[int]] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def tab(i: int) -> None:
        try:
            start.wait(timeout=60)
            offered = selectors.clip_next_for_expert(
                expert=expert, count=2, holder=f"tab-{i}"
            )
            with lock:
                got[i] = [a.clip.pk for a in offered]
        except Exception as exc:  # surfaced by the assertion below
            with lock:
                failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[:3]
    handed = [clip for clips in got.values() for clip in clips]
    assert len(handed) == len(set(handed)), "one clip went to two tabs"
    holders = dict(
        ClipLease.objects.filter(expert=expert).values_list("clip_id", "holder")
    )
    for i, clips in got.items():
        assert all(holders[c] == f"tab-{i}" for c in clips)
    assert handed  # (a tab that lost every race asks again, as the page does)
